"""Audio constants that derive from one another, defined in one place.

Every encoder in spokenlm produces frames at :data:`FRAME_RATE` (50 Hz, HuBERT's rate), so
units from any encoder can be spoken by any vocoder trained at the same rate.
"""

SAMPLE_RATE: int = 16_000
#: Samples per unit frame: 20 ms, the stride of HuBERT / wav2vec 2.0's conv front-end.
HOP_LENGTH: int = 320
FRAME_RATE: float = SAMPLE_RATE / HOP_LENGTH  # 50.0 frames per second
#: Analysis window for spectral features (mfcc, logmel): 25 ms.
WIN_LENGTH: int = 400
N_FFT: int = 512
N_MELS: int = 80
#: Shortest audio spokenlm accepts: one encoder receptive field (400 samples) and a bit.
MIN_DURATION_S: float = 0.1
