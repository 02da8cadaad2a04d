import subprocess
import sys

import pytest
from mmengine.registry import MODELS as ROOT_MODELS

from a3d_det import registry


def test_registries_are_children_of_mmengine_roots():
    assert registry.MODELS.parent is ROOT_MODELS
    assert registry.MODELS.scope == 'a3d_det'
    for name in ('DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'VISUALIZERS',
                 'DATA_SAMPLERS'):
        reg = getattr(registry, name)
        assert reg.scope == 'a3d_det'
        assert reg.parent is not None



@pytest.mark.slow
def test_build_by_name_imports_the_defining_package():
    # 'locations' must import the module that registers each type, so that a
    # config naming a type works without custom_imports. A fresh interpreter,
    # so that no other test has imported the packages already.
    code = (
        'from a3d_det.registry import HOOKS, METRICS, MODELS, TRANSFORMS\n'
        'for reg, name in [(MODELS, "A3DConv"), (MODELS, "LesionMaskRCNN"),\n'
        '                  (TRANSFORMS, "PackLesionInputs"),\n'
        '                  (METRICS, "DeepLesionFROCMetric"),\n'
        '                  (HOOKS, "LesionVisualizationHook")]:\n'
        '    assert reg.get(name) is not None, name\n')
    subprocess.run([sys.executable, '-c', code], check=True)
