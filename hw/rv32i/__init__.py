"""A multi-cycle RV32I + Zicsr control core."""
