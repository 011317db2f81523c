"""Client and upstream wire formats, and the unified representation between them."""
