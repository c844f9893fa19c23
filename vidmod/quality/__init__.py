"""Quality figures of the moderation loop, computed from the decision records and the review outputs they name."""
