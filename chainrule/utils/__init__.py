"""Small helpers every part of chainrule uses, importable from anywhere without import cycles (NumPy only).

- ``chainrule.utils.atomic``: ``atomic_open`` / ``atomic_write_text`` / ``atomic_write_bytes`` / ``atomic_write_json``,
  the one way the library writes a file (temp file in the same folder, fsync, ``os.replace``, fsync of the folder).
- ``chainrule.utils.seeding``: ``as_generator``, the one seed -> ``numpy.random.Generator`` rule.
- ``chainrule.utils.serial``: ``save_tree`` / ``load_tree``, the one pickle-free file format (an ``.npz`` of arrays
  plus a JSON document) behind estimator files and training checkpoints.
"""
