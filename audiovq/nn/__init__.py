"""Neural network modules: quantizer, encoders, the WaveNet stack, assembled models."""
