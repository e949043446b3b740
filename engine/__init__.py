"""Engine backends behind one protocol (`engine.protocol.Engine`)."""
