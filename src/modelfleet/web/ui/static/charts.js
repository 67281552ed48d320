// Draws every <figure class="chart" data-src="..." data-metrics="a,b"> with the vendored uPlot:
// fetches the series JSON (same origin), or reads it from the figure's own
// <script type="application/json"> when it has no data-src, plots the chosen metrics against `timestamps`
// (drag to zoom, double-click to reset, hover values in the legend), and fills a
// "Table view" <details><table> in the figure with the same numbers. No build step.
(function () {
  "use strict";

  var COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
  var LABELS = {
    requests_per_s: "requests/s",
    error_rate: "error rate",
    p50_s: "p50 (s)",
    p95_s: "p95 (s)",
    p99_s: "p99 (s)",
    confidence: "mean confidence",
    replicas: "replicas",
    observed_rps: "observed requests/s",
    forecast_upper_rps: "forecast upper requests/s",
  };

  // A metric is a top-level column, or "drift.<feature>" for a feature's PSI.
  function column(data, metric) {
    if (metric.indexOf("drift.") === 0) {
      return (data.drift || {})[metric.slice(6)] || [];
    }
    return data[metric] || [];
  }

  function label(metric) {
    if (metric.indexOf("drift.") === 0) return "PSI " + metric.slice(6);
    return LABELS[metric] || metric;
  }

  function format(value) {
    if (value === null || value === undefined) return "\u2013"; // an en dash: no data
    if (Math.abs(value) >= 100) return value.toFixed(0);
    return Number(value.toPrecision(3)).toString();
  }

  function when(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
  }

  function tableView(figure, times, metrics, columns) {
    var details = figure.querySelector("details.table-view");
    if (!details) {
      details = document.createElement("details");
      details.className = "table-view";
      var summary = document.createElement("summary");
      summary.textContent = "Table view";
      details.appendChild(summary);
      figure.appendChild(details);
    }
    var table = details.querySelector("table") || details.appendChild(document.createElement("table"));
    table.textContent = "";
    var head = table.createTHead().insertRow();
    ["time (UTC)"].concat(metrics.map(label)).forEach(function (text) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      head.appendChild(th);
    });
    var body = table.createTBody();
    if (!times.length) {
      var cell = body.insertRow().insertCell();
      cell.colSpan = metrics.length + 1;
      cell.textContent = "No data in this window.";
      return;
    }
    times.forEach(function (t, i) {
      var row = body.insertRow();
      row.insertCell().textContent = when(t);
      columns.forEach(function (values) {
        row.insertCell().textContent = format(values[i]);
      });
    });
  }

  function draw(figure) {
    var metrics = (figure.dataset.metrics || "").split(",").filter(Boolean);
    var plot = figure.querySelector(".plot") || figure.insertBefore(document.createElement("div"), figure.firstChild);
    plot.className = "plot";
    var inline = figure.querySelector('script[type="application/json"]');
    var loaded = inline
      ? Promise.resolve().then(function () {
          return JSON.parse(inline.textContent);
        })
      : fetch(figure.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
          function (response) {
            if (!response.ok) throw new Error(response.status + " " + response.statusText);
            return response.json();
          }
        );
    loaded
      .then(function (data) {
        var times = data.timestamps || [];
        var columns = metrics.map(function (m) {
          return column(data, m);
        });
        tableView(figure, times, metrics, columns);
        if (!times.length) {
          plot.textContent = "No data in this window.";
          return;
        }
        var series = [{ label: "time (UTC)" }].concat(
          metrics.map(function (m, i) {
            return { label: label(m), stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: false, value: function (u, v) { return format(v); } };
          })
        );
        var width = plot.clientWidth || figure.clientWidth || 600;
        // uPlot zooms on drag and resets on double-click; the legend shows hovered values.
        new uPlot(
          {
            width: width,
            height: Number(figure.dataset.height || 240),
            series: series,
            scales: { x: { time: true } },
            cursor: { drag: { x: true, y: false } },
            tzDate: function (ts) {
              return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
            },
          },
          [times].concat(columns),
          plot
        );
      })
      .catch(function (error) {
        plot.textContent = "Could not load this chart: " + error.message;
      });
  }

  function drawAll() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("figure.chart").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
