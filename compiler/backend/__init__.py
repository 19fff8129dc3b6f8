"""Backend: plan the lowered IR onto hardware stages and build the Amaranth accelerator."""
