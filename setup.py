from pathlib import Path

from setuptools import find_packages, setup


def read_requirements():
    lines = Path(__file__).with_name('requirements.txt').read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


setup(
    name='a3d_det',
    version='0.1.0',
    description='Universal lesion detection on CT with 3D context fusion '
                'operators (A3D, MICCAI 2021) on mmengine and torchvision',
    long_description=Path(__file__).with_name('README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['a3d_det', 'a3d_det.*']),
    python_requires='>=3.10',
    install_requires=read_requirements(),
    license='Apache-2.0',
)
