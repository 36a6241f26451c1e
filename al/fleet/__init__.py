"""The fleet side of active learning: what devices send back (`ingest`) and fleet simulation (`run`)."""
