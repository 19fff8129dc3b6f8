"""The SoC around the RV32I core: memory map, bus, memories, peripherals and top."""
