"""SMSCs for the SMPP tests: the Node one on the npm `smpp` package (interop) and a catalogue of faults."""
