"""An existing Open Inference Protocol client, Triton's HTTP client, works unchanged."""

from __future__ import annotations

import numpy as np
import tritonclient.http as triton

from tests.gateway.conftest import LABELS, Running


def test_tritons_http_client_talks_to_the_gateway_unchanged(gateway: Running) -> None:
    headers = {"Authorization": f"Bearer {gateway.keys['acme']}"}
    client = triton.InferenceServerClient(gateway.url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("digits", headers=headers)
        metadata = client.get_model_metadata("digits", headers=headers)
        assert metadata["inputs"][0]["name"] == "pixels"

        rows = gateway.digits[:5]
        pixels = triton.InferInput("pixels", list(rows.shape), "FP32")
        pixels.set_data_from_numpy(rows, binary_data=False)
        outputs = [
            triton.InferRequestedOutput("label", binary_data=False),
            triton.InferRequestedOutput("probabilities", binary_data=False),
        ]
        result = client.infer(
            "digits", [pixels], outputs=outputs, request_id="t-1", headers=headers
        )
    finally:
        client.close()
    expected = gateway.models["v1"].predict_proba(rows)  # type: ignore[attr-defined]
    labels = result.as_numpy("label")
    assert [x.decode() if isinstance(x, bytes) else x for x in labels] == [
        LABELS[i] for i in expected.argmax(axis=1)
    ]
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-7)
    assert result.get_response()["id"] == "t-1"
