import csv

import numpy as np
import pytest

from a3d_det.datasets.dl_info import (DL_INFO_COLUMNS, DLInfoError, format_dl_info_row,
                                      iter_dl_info, parse_dl_info_row)

# A row laid out like the NIH release's DL_info.csv (1-based coordinates).
REAL_ROW = dict(zip(DL_INFO_COLUMNS, [
    '000001_01_01_109.png', '1', '1', '1', '109',
    '233.537, 95.0204, 234.057, 106.977, 231.169, 101.605, 236.252, 101.143',
    '226.169, 90.0204, 241.252, 111.977', '11.9677, 5.10387',
    '0.44111, 0.185241, 0.464003', '3', '0', '103, 115', '0.488281, 0.488281, 5',
    '512, 512', '-175, 275', 'F', '62', '3']))


def test_parse_real_row_to_0_based():
    rec = parse_dl_info_row(REAL_ROW)
    assert rec['file_name'] == '000001_01_01/109.png'
    np.testing.assert_allclose(rec['bbox'], [225.169, 89.0204, 240.252, 110.977], rtol=1e-6)
    np.testing.assert_allclose(rec['recist'][:2], [232.537, 94.0204], rtol=1e-6)
    assert rec['spacing'] == (0.488281, 0.488281, 5.0)
    assert rec['split'] == 3 and rec['lesion_type'] == 3 and not rec['noisy']
    assert rec['slice_range'] == (103, 115) and rec['image_size'] == (512, 512)


def test_format_is_inverse_and_1_based():
    rec = parse_dl_info_row(REAL_ROW)
    row = format_dl_info_row(rec)
    assert list(row) == list(DL_INFO_COLUMNS)
    assert row['File_name'] == REAL_ROW['File_name']
    assert row['Bounding_boxes'] == REAL_ROW['Bounding_boxes']
    back = parse_dl_info_row(row)
    np.testing.assert_allclose(back['recist'], rec['recist'], atol=1e-3)


def test_nan_age_and_interval_allowed():
    rec = parse_dl_info_row(dict(REAL_ROW, Patient_age='NaN',
                                 Spacing_mm_px_='0.7, 0.7, NaN'))
    assert np.isnan(rec['age']) and np.isnan(rec['spacing'][2])
    assert format_dl_info_row(rec)['Patient_age'] == 'NaN'


def write(tmp_path, rows, header=DL_INFO_COLUMNS):
    path = tmp_path / 'DL_info.csv'
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(c, '') for c in header] if isinstance(r, dict) else r)
    return str(path)


@pytest.mark.parametrize('field, value, message', [
    ('Bounding_boxes', '1, 2, 3', 'Bounding_boxes'),
    ('Bounding_boxes', '10, 2, 3, 4', 'x1 <= x2'),
    ('Measurement_coordinates', 'a, b, c, d, e, f, g, h', 'Measurement_coordinates'),
    ('Train_Val_Test', '4', 'Train_Val_Test'),
    ('Possibly_noisy', '2', 'Possibly_noisy'),
    ('Spacing_mm_px_', '0, 0.7, 1', 'Spacing'),
    ('File_name', '000001_01_01_109.jpg', 'file name'),
    ('Key_slice_index', '1.5', 'Key_slice_index'),
    ('Image_size', '512', 'Image_size'),
])
def test_malformed_row_names_file_and_line(tmp_path, field, value, message):
    path = write(tmp_path, [REAL_ROW, dict(REAL_ROW, **{field: value})])
    with pytest.raises(DLInfoError, match=rf'DL_info.csv, line 3 .*{message}'):
        list(iter_dl_info(path))


def test_short_row_and_missing_columns(tmp_path):
    path = write(tmp_path, [['000001_01_01_109.png', '1']])
    with pytest.raises(DLInfoError, match='line 2'):
        list(iter_dl_info(path))
    path = write(tmp_path, [], header=DL_INFO_COLUMNS[:-1])
    with pytest.raises(DLInfoError, match="missing columns \\['Train_Val_Test'\\]"):
        list(iter_dl_info(path))
    with pytest.raises(FileNotFoundError, match='nope.csv'):
        list(iter_dl_info(str(tmp_path / 'nope.csv')))


def test_non_strict_reports_and_continues(tmp_path):
    path = write(tmp_path, [dict(REAL_ROW, Train_Val_Test='9'), REAL_ROW])
    out = list(iter_dl_info(path, strict=False))
    assert out[0][1] is None and 'line 2' in out[0][2]
    assert out[1][0] == 3 and out[1][1]['key_index'] == 109
