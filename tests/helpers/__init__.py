"""Helpers shared by the tests, importable as ``tests.helpers.<module>``
(``pytest.ini`` puts the repository root on ``sys.path``):

* ``platform_fixtures``: a tiny mmengine model, dataset and metric, and
  running the tools in subprocesses;
* ``tiny_detector``: a small detector config and checkpoint on disk;
* ``ct_files``: DICOM and NIfTI test series;
* ``dist_froc_worker``: the ranks of the distributed FROC metric test;
* ``tools``: a script of ``tools/`` loaded as a module.
"""
