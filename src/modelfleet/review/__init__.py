"""Human in the loop: the review queue, feedback labels, and the accuracy they measure."""

from modelfleet.review.accuracy import AccuracyRow, ClassAccuracy, Labelled, accuracy, score
from modelfleet.review.queue import (
    ReviewController,
    ReviewItem,
    export_label_studio,
    get_item,
    label_item,
    list_items,
    next_item,
    open_items,
    sample_inputs,
    summarize_inputs,
)

__all__ = [
    "AccuracyRow",
    "ClassAccuracy",
    "Labelled",
    "ReviewController",
    "ReviewItem",
    "accuracy",
    "export_label_studio",
    "get_item",
    "label_item",
    "list_items",
    "next_item",
    "open_items",
    "sample_inputs",
    "score",
    "summarize_inputs",
]
