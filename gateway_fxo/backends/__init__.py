"""Line-card backends behind `gateway_fxo.line.LineCard`.

- `sim`: a simulated central office (`SimulatedLine`), driven by `sim_control` from outside.
- `modem`: a V.253 voice modem over a serial port.
- `gpio`: a hook relay and ring detector on GPIO pins, audio through PyAudio.

Import the backend module you need; this package imports none of them, so the hardware
libraries are only needed where the hardware is.
"""
