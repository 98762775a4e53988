"""Programs that run inside the guest; standard library only."""
