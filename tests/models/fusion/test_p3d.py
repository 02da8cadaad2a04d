import torch
import torch.nn.functional as F

from a3d_det.models.fusion import P3DConv


def test_p3d_is_spatial_then_depth_convolution():
    """Reference: Conv3D (1, K, K) with W2D, then Conv3D (Kd, 1, 1), depth padding Kd // 2."""
    torch.manual_seed(0)
    for k, kd in ((3, None), (1, None), (3, 5)):
        op = P3DConv(6, 4, k, stride=2, padding=k // 2, bias=True, num_slices=5,
                     depth_kernel_size=kd)
        with torch.no_grad():
            op.temporal_weight.normal_()
        x = torch.randn(2, 6, 5, 9, 7)
        kd = op.depth_kernel_size
        y = F.conv3d(x, op.weight.unsqueeze(2), op.bias, (1, 2, 2), (0, k // 2, k // 2))
        ref = F.conv3d(y, op.temporal_weight, None, 1, (kd // 2, 0, 0))
        torch.testing.assert_close(op(x), ref, rtol=1e-4, atol=1e-4)
