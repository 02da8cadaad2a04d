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
