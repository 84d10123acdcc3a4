"""The ``Function`` nodes behind ``chainrule.nn.functional``: one small, fused op per file family.

Each forward/backward works on NumPy arrays, keeps the input dtype (float32 stays float32) and saves only what its
backward needs. The public, validated entry points are the functions in ``chainrule.nn.functional``.
"""
