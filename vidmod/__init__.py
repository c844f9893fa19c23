"""vidmod: video content moderation with a human in the loop (local tooling and CLI)."""
