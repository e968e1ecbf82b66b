"""Search: people and content, with visibility in three layers (see ``backend``)."""
