"""Local Amazon Augmented AI (A2I) runtime."""
