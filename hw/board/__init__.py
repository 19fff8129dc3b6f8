"""What a design needs on a real board: a UART, and tops that join an accelerator or a SoC,
given as Verilog, to the board's pins."""
