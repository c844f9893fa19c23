"""Local reviewer portal: renders the same ui/ worker template A2I renders."""
