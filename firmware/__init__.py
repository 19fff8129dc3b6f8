"""Firmware for the qfab SoC: C runtime, generated linker scripts and header, build helper."""
