from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list[str]:
    """Requirement lines of ``requirements/<name>.txt`` (comments dropped)."""
    lines = (HERE / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [line.split('#')[0].strip() for line in lines
            if line.split('#')[0].strip()]


setup(
    name='a3d_det',
    version='0.1.0',
    description='Universal lesion detection on CT with 3D context fusion '
                'operators (A3D, MICCAI 2021) on mmengine and torchvision',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['a3d_det', 'a3d_det.*']),
    package_data={'a3d_det.models.fusion': ['a3d_cpu.c']},   # compiled on first use
    python_requires='>=3.10',
    install_requires=read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests')},
    license='Apache-2.0',
)
