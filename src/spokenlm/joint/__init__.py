"""Joint speech-text pretraining: SpeechLM-P/H (shared unit space, text-to-unit model) and
SLAM (one conformer encoder for speech and text), each fine-tunable with CTC.

Kept import-light (``spokenlm.tokenize.encoders`` imports :mod:`spokenlm.joint.encoder` to
register the ``joint`` encoder); import the submodules directly::

    from spokenlm.joint.speechlm import SpeechLMModel, SpeechLMConfig
    from spokenlm.joint.slam import SLAMModel, SLAMConfig
    from spokenlm.joint.t2u import T2UModel, train_t2u
    from spokenlm.joint.speechlm_train import train_speechlm
    from spokenlm.joint.slam_train import train_slam
"""
