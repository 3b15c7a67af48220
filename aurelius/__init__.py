"""aurelius: keep an ECS model server on the newest model version."""
