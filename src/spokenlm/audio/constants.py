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
#: Longest audio a whole-file reader accepts by default (2 h): stages that load a file at
#: once (tokenizer training, vocoder data, ABX, alignment, ...) refuse longer files from
#: their header. ``tokenize``, ``resynth`` and ``generate`` stream files longer than
#: ``audio.chunking.STREAM_ABOVE_S`` block by block in bounded memory, with no length limit.
MAX_DURATION_S: float = 2 * 3600.0
#: Header sample rates outside this range come from corrupt or forged headers (a 64 KB
#: file "at 1 Hz" claims 9 hours).
MIN_SAMPLE_RATE: int = 1_000
MAX_SAMPLE_RATE: int = 384_000
#: More channels than this in a header is taken as corruption (3rd-order ambisonics has 16).
MAX_CHANNELS: int = 64
