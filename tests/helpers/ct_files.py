"""CT files written by the tests: compressed DICOM (a JPEG lossless encoder,
pydicom's encoders), enhanced multi-frame CT, NIfTI in several storage
orientations, all made from pydicom's CT5N series."""
from __future__ import annotations

import os
import os.path as osp
import struct

import nibabel as nib
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGLosslessSV1, generate_uid

CT_SMALL = get_testdata_file('CT_small.dcm')
CT5N = osp.join(osp.dirname(CT_SMALL), 'dicomdirtests', '98892001', 'CT5N')
ENHANCED_CT = '1.2.840.10008.5.1.4.1.1.2.1'


# ---------------------------------------------------------- JPEG lossless
def encode_jpeg_lossless_sv1(samples: np.ndarray, precision: int) -> bytes:
    """ITU T.81 process 14, first-order prediction (selection value 1), one
    component, point transform 0: SOI, SOF3, DHT, SOS, entropy data, EOI.

    The Huffman table gives each difference category 0..16 the 5-bit code of
    its number. ``samples`` are the stored bit patterns (uint16).
    """
    x = samples.astype(np.int64)
    h, w = x.shape
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]            # first line: left neighbour
    pred[1:, 0] = x[:-1, 0]            # first column: the sample above
    pred[1:, 1:] = x[1:, :-1]          # predictor 1: Ra, the left neighbour
    diff = (x - pred) % 65536
    diff = np.where(diff > 32768, diff - 65536, diff)
    bits = []
    for d in diff.ravel().tolist():
        ssss = 16 if d == 32768 else abs(d).bit_length()
        bits.append(format(ssss, '05b'))
        if 0 < ssss < 16:
            bits.append(format(d if d > 0 else d + (1 << ssss) - 1, f'0{ssss}b'))
    stream = ''.join(bits)
    stream += '1' * (-len(stream) % 8)  # pad with 1-bits
    data = bytearray()
    for i in range(0, len(stream), 8):
        byte = int(stream[i:i + 8], 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0x00)          # byte stuffing
    sof = struct.pack('>HBHHBBBB', 11, precision, h, w, 1, 1, 0x11, 0)
    dht = struct.pack('>HB', 2 + 1 + 16 + 17, 0x00) + bytes(
        [0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    sos = struct.pack('>HBBBBBB', 8, 1, 1, 0x00, 1, 0, 0)
    return (b'\xff\xd8' + b'\xff\xc3' + sof + b'\xff\xc4' + dht + b'\xff\xda' + sos
            + bytes(data) + b'\xff\xd9')


def write_jpeg_lossless(src: str, dst: str) -> np.ndarray:
    """``src`` re-encoded as JPEG lossless SV1; returns its stored pixels."""
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array
    stored = arr.view(np.uint16) if arr.dtype == np.int16 else arr.astype(np.uint16)
    frame = encode_jpeg_lossless_sv1(stored, int(ds.BitsStored))
    ds.PixelData = encapsulate([frame])
    ds['PixelData'].VR = 'OB'
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.save_as(dst, enforce_file_format=True)
    return arr


def hu_of(path: str) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return (ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            ).astype(np.float32)


def twin_series(plain: str, compressed: str, syntax, upscale: int = 4) -> None:
    """CT5N enlarged ``upscale`` times in plane (OpenJPEG's six resolution
    levels need 32 px), written uncompressed to ``plain`` and in ``syntax``
    to ``compressed``."""
    for d in (plain, compressed):
        os.makedirs(d, exist_ok=True)
    for name in sorted(os.listdir(CT5N)):
        ds = pydicom.dcmread(osp.join(CT5N, name))
        big = np.kron(ds.pixel_array, np.ones((upscale, upscale), ds.pixel_array.dtype))
        ds.Rows, ds.Columns = big.shape
        ds.PixelSpacing = [float(v) / upscale for v in ds.PixelSpacing]
        ds.PixelData = big.tobytes()
        ds.save_as(osp.join(plain, name), enforce_file_format=True)
        ds.compress(syntax, generate_instance_uid=False)
        ds.save_as(osp.join(compressed, name), enforce_file_format=True)


# ------------------------------------------------------------ enhanced CT
def _item(**kw) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def enhanced_ct(path, frames, positions, series_uid, *, orientation=(1, 0, 0, 0, 1, 0),
                spacing=(0.5, 0.5), slope=1.0, intercept=-1024.0,
                per_frame_rescale=None, thickness=None):
    """Write an Enhanced CT Image Storage file.

    Args:
        frames: (F, H, W) int16 stored values.
        positions: F ImagePositionPatient (per-frame PlanePositionSequence).
        per_frame_rescale: F (slope, intercept) pairs in the per-frame
            groups instead of the shared one.
    """
    frames = np.asarray(frames, dtype=np.int16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENHANCED_CT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = ENHANCED_CT
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = '1.2.3.4'
    ds.SeriesInstanceUID = series_uid
    ds.Modality = 'CT'
    ds.PatientID = 'ENH'
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    shared = _item(
        PixelMeasuresSequence=Sequence([_item(PixelSpacing=list(spacing),
                                              SliceThickness=thickness or 1.0)]),
        PlaneOrientationSequence=Sequence([_item(ImageOrientationPatient=list(orientation))]))
    if per_frame_rescale is None:
        shared.PixelValueTransformationSequence = Sequence([_item(
            RescaleSlope=slope, RescaleIntercept=intercept, RescaleType='HU')])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for i, pos in enumerate(positions):
        item = _item(PlanePositionSequence=Sequence([_item(ImagePositionPatient=list(pos))]),
                     FrameContentSequence=Sequence([_item(InStackPositionNumber=i + 1)]))
        if per_frame_rescale is not None:
            s, b = per_frame_rescale[i]
            item.PixelValueTransformationSequence = Sequence([_item(
                RescaleSlope=s, RescaleIntercept=b, RescaleType='HU')])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = frames.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return ds


def ct5n_as_enhanced(dst, groups, compress=None):
    """CT5N's slices re-packed as enhanced CT files: ``groups`` lists the
    slice files (sorted names) going into each file."""
    names = sorted(os.listdir(CT5N))
    dss = [pydicom.dcmread(osp.join(CT5N, n)) for n in names]
    os.makedirs(dst, exist_ok=True)
    for g, members in enumerate(groups):
        sel = [dss[i] for i in members]
        ds = enhanced_ct(osp.join(dst, f'enh{g}.dcm'), [d.pixel_array for d in sel],
                         [[float(v) for v in d.ImagePositionPatient] for d in sel],
                         str(dss[0].SeriesInstanceUID),
                         spacing=[float(v) for v in dss[0].PixelSpacing],
                         slope=float(dss[0].RescaleSlope),
                         intercept=float(dss[0].RescaleIntercept))
        if compress is not None:
            ds = pydicom.dcmread(osp.join(dst, f'enh{g}.dcm'))
            ds.compress(compress, generate_instance_uid=False)
            ds.save_as(osp.join(dst, f'enh{g}.dcm'), enforce_file_format=True)


# ------------------------------------------------------------------ NIfTI
def ct5n_dicom():
    """CT5N sorted along z: stored values (N, H, W), rescale, and the LPS
    affine of the (column, row, slice) voxel grid built from the headers."""
    dss = sorted((pydicom.dcmread(osp.join(CT5N, f)) for f in os.listdir(CT5N)),
                 key=lambda ds: float(ds.ImagePositionPatient[2]))
    stored = np.stack([ds.pixel_array for ds in dss]).astype(np.int16)
    iop = np.array(dss[0].ImageOrientationPatient, float)
    dr, dc = (float(v) for v in dss[0].PixelSpacing)
    first = np.array(dss[0].ImagePositionPatient, float)
    last = np.array(dss[-1].ImagePositionPatient, float)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * dc                  # column index: along the row direction
    lps[:3, 1] = iop[3:] * dr                  # row index: along the column direction
    lps[:3, 2] = (last - first) / (len(dss) - 1)
    lps[:3, 3] = first
    return stored, float(dss[0].RescaleIntercept), lps


def save_nifti(data, affine, path, intercept):
    img = nib.Nifti1Image(data, affine)
    img.header.set_slope_inter(1.0, intercept)    # as dcm2niix stores CT
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, path)
    return path


def flip_axis(data, affine, axis):
    """Store ``axis`` reversed, with the affine that keeps every voxel's place."""
    data = np.flip(data, axis)
    flip = np.eye(4)
    flip[axis, axis] = -1
    flip[axis, 3] = data.shape[axis] - 1
    return data, affine @ flip


def permute(data, affine, order):
    """Store the voxel axes in ``order``, the affine following."""
    perm = np.eye(4)
    perm[:3, :3] = np.eye(3)[:, order]
    return np.transpose(data, order), affine @ perm


def variants():
    """The same scan stored as converters and tools write it."""
    stored, intercept, lps = ct5n_dicom()
    data = stored.transpose(2, 1, 0)                    # (column, row, slice)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps         # LPS -> RAS flip
    out = {'lps_to_ras': (data, ras)}
    # dcm2niix also stores the rows bottom-up
    out['dcm2niix_rows_flipped'] = flip_axis(data, ras, 1)
    # RAS+ (nibabel's closest canonical): columns flipped in plane
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, ras))
    out['ras_plus'] = (np.asarray(canonical.dataobj), canonical.affine)
    # slices stored superior first, and slice axis first
    d, a = flip_axis(data, ras, 2)
    out['slices_reversed_axes_permuted'] = permute(d, a, (2, 0, 1))
    return out, stored.astype(np.float32) + intercept
