#!/usr/bin/env python3
"""Writes the checkpoint fixtures the TorchCheckpoint tests read, into OUTDIR (nothing is committed).

    make_checkpoint_fixtures.py OUTDIR                  small fixtures + OUTDIR/expected.json
    make_checkpoint_fixtures.py OUTDIR --r50 [--only-r50]
                                also OUTDIR/r50_legacy.pth: random tensors with the shapes of the GHM
                                RetinaNet-R50-FPN state dict (358 keys, ~150 MB, legacy format, mmdet-style meta)
    ... --r50-keys KEYS.tsv     the same, with the key<TAB>shape<TAB>dtype list read from KEYS.tsv (e.g. the spec's
                                retinanet_ghm_r50_fpn_state_dict_keys.tsv) instead of the built-in one

Each checkpoint is written twice: NAME.pth (zip, torch.save's default) and NAME.legacy.pth
(_use_new_zipfile_serialization=False). expected.json describes every tensor exactly: dtype, shape, strides,
storage offset, the raw little-endian bytes of its contiguous copy (base64), and which tensors share a storage.
"""
import base64
import collections
import json
import os
import sys

import torch

COCO = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light')

CONFIG = """model = dict(
    type='RetinaNet',
    bbox_head=dict(type='RetinaHead', num_classes=80,
                   loss_cls=dict(type='GHMC', bins=30, momentum=0.75, use_sigmoid=True, loss_weight=1.0),
                   loss_bbox=dict(type='GHMR', mu=0.02, bins=10, momentum=0.7, loss_weight=10.0)))
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
"""


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.layer = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(4, 2)


def module_state_dict():
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn1.running_mean.uniform_(-1, 1)
        net.bn1.running_var.uniform_(0.5, 2)
        net.bn1.num_batches_tracked.fill_(7)
    return net, net.state_dict()


def mmdet_checkpoint():
    net, sd = module_state_dict()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0001)
    for group in opt.param_groups:
        group.setdefault('initial_lr', group['lr'])
    for p in net.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    meta = {
        'mmdet_version': '2.16.0+abc1234',
        'CLASSES': COCO,
        'config': CONFIG,
        'epoch': 12,
        'iter': 87936,
        'mmcv_version': '1.3.12',
        'time': 'Sat Jan 30 12:00:00 2020',
        'seed': None,
        'lr': 0.0001,
    }
    sd = collections.OrderedDict((k, v.detach().clone()) for k, v in net.state_dict().items())
    sd._metadata = net.state_dict()._metadata
    return {'meta': meta, 'state_dict': sd, 'optimizer': opt.state_dict()}


def dtype_tensors():
    d = collections.OrderedDict()
    f = torch.tensor([0.0, -0.0, 1.5, -2.25, float('inf'), float('-inf'), float('nan'), 1e-30, 3.4e38, 65504.0])
    d['float32'] = f
    d['float64'] = torch.tensor([0.1, -1e300, 5e-324, float('nan'), 2.0 ** 60], dtype=torch.float64)
    d['float16'] = f.to(torch.float16)
    d['bfloat16'] = f.to(torch.bfloat16)
    d['int8'] = torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8)
    d['int16'] = torch.tensor([-32768, -1, 0, 32767], dtype=torch.int16)
    d['int32'] = torch.tensor([-2 ** 31, -1, 0, 2 ** 31 - 1], dtype=torch.int32)
    d['int64'] = torch.tensor([-2 ** 63, -1, 0, 2 ** 53 + 1, 2 ** 63 - 1], dtype=torch.int64)
    d['uint8'] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    d['bool'] = torch.tensor([True, False, True])
    d['scalar_f32'] = torch.tensor(3.25)
    d['scalar_i64'] = torch.tensor(0, dtype=torch.int64)
    d['empty'] = torch.zeros(0)
    d['empty_3d'] = torch.zeros(2, 0, 3, dtype=torch.int32)
    d['matrix'] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    return d


def view_tensors():
    base = torch.arange(100, dtype=torch.float32)
    grid = torch.arange(60, dtype=torch.int64).reshape(6, 10)
    d = collections.OrderedDict()
    d['base'] = base
    d['slice'] = base[10:20]                 # storage offset 10
    d['strided'] = base[5::7]                # stride 7
    d['matrix_t'] = base[:24].view(4, 6).t()  # non-contiguous, transposed
    d['grid'] = grid
    d['grid_cols'] = grid[:, 2:5]            # offset 2, strides (10, 1)
    d['grid_row'] = grid[3]                  # offset 30
    d['expanded'] = torch.tensor([1.0, 2.0]).reshape(2, 1).expand(2, 3)  # stride 0
    d['scalar_view'] = base[42]              # 0-d view, offset 42
    d['empty_view'] = base[50:50]
    return d


def misc_values():
    return {
        'ints': [0, 1, -1, 255, 256, 65535, 65536, -2 ** 31, 2 ** 31 - 1, 2 ** 31, -2 ** 63, 2 ** 63 - 1],
        'big': 2 ** 100,
        'negbig': -(2 ** 70),
        'floats': (0.5, -1e-300, float('inf')),
        'text': 'héllo\nwörld ✓',
        'bytes': b'\x00\x01\xff',
        'none': None,
        'flags': (True, False),
        'nested': {'a': [1, [2, [3, (4, 5)]]], 'b': {}},
        'int_keys': {0: 'zero', 1: 'one', -5: 'minus five'},
        'tuple_key': {(1, 'a'): 'pair'},
        'set': {3},
        'device': torch.device('cpu'),
        'long_list': list(range(2500)),
        'shared': [torch.ones(2)] * 2,
    }


def describe(obj, prefix, out, storages):
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        c = t.contiguous()
        raw = c.reshape(-1).view(torch.uint8).numpy().tobytes() if c.numel() else b''
        sid = t.untyped_storage().data_ptr() if t.untyped_storage().nbytes() else None
        storages.setdefault(sid, []).append(prefix)
        out[prefix] = {'dtype': str(t.dtype).replace('torch.', ''), 'shape': list(t.shape), 'stride': list(t.stride()),
                       'offset': t.storage_offset(), 'bytes': base64.b64encode(raw).decode()}
    elif isinstance(obj, dict):
        for k, v in obj.items():
            describe(v, f'{prefix}.{k}' if prefix else str(k), out, storages)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            describe(v, f'{prefix}.{i}' if prefix else str(i), out, storages)


def save_both(obj, outdir, name, expected):
    torch.save(obj, os.path.join(outdir, name + '.pth'))
    torch.save(obj, os.path.join(outdir, name + '.legacy.pth'), _use_new_zipfile_serialization=False)
    tensors, storages = {}, {}
    describe(obj, '', tensors, storages)
    expected[name] = {'tensors': tensors, 'shared': [v for k, v in storages.items() if k is not None and len(v) > 1]}


def r50_keys():
    """(key, shape, dtype) of MMDetection 2.16's retinanet_ghm_r50_fpn state dict, in module order (spec §6.3)."""
    def bn(prefix, c):
        return [(f'{prefix}.{n}', [c], 'float32') for n in ('weight', 'bias', 'running_mean', 'running_var')] + \
               [(f'{prefix}.num_batches_tracked', [], 'int64')]

    def conv(prefix, shape, bias=True):
        return [(f'{prefix}.weight', shape, 'float32')] + ([(f'{prefix}.bias', shape[:1], 'float32')] if bias else [])

    keys = conv('backbone.conv1', [64, 3, 7, 7], bias=False) + bn('backbone.bn1', 64)
    inplanes = 64
    for layer, (blocks, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), 1):
        for b in range(blocks):
            p = f'backbone.layer{layer}.{b}'
            cin = inplanes if b == 0 else planes * 4
            keys += conv(f'{p}.conv1', [planes, cin, 1, 1], False) + bn(f'{p}.bn1', planes)
            keys += conv(f'{p}.conv2', [planes, planes, 3, 3], False) + bn(f'{p}.bn2', planes)
            keys += conv(f'{p}.conv3', [planes * 4, planes, 1, 1], False) + bn(f'{p}.bn3', planes * 4)
            if b == 0:
                keys += conv(f'{p}.downsample.0', [planes * 4, inplanes, 1, 1], False) + bn(f'{p}.downsample.1', planes * 4)
        inplanes = planes * 4
    for i, c in enumerate((512, 1024, 2048)):
        keys += conv(f'neck.lateral_convs.{i}.conv', [256, c, 1, 1])
    for i, c in enumerate((256, 256, 256, 2048, 256)):
        keys += conv(f'neck.fpn_convs.{i}.conv', [256, c, 3, 3])
    for loss, bins in (('loss_cls', 30), ('loss_bbox', 10)):
        keys += [(f'bbox_head.{loss}.edges', [bins + 1], 'float32'), (f'bbox_head.{loss}.acc_sum', [bins], 'float32')]
    for branch in ('cls_convs', 'reg_convs'):
        for i in range(4):
            keys += conv(f'bbox_head.{branch}.{i}.conv', [256, 256, 3, 3])
    keys += conv('bbox_head.retina_cls', [720, 256, 3, 3]) + conv('bbox_head.retina_reg', [36, 256, 3, 3])
    return keys


def read_keys(tsv):
    keys = []
    for line in open(tsv):
        if line.startswith('#') or not line.strip():
            continue
        key, shape, dtype = line.rstrip('\n').split('\t')
        keys.append((key, [] if shape == 'scalar' else [int(x) for x in shape.split('x')], dtype))
    return keys


def r50(outdir, keys):
    torch.manual_seed(0)
    sd = collections.OrderedDict()
    for key, dims, dtype in keys:
        sd[key] = torch.zeros(dims, dtype=torch.int64) if dtype == 'int64' else torch.randn(dims)
    meta = {'mmdet_version': '2.16.0', 'CLASSES': COCO, 'epoch': 12, 'iter': 87936, 'config': CONFIG}
    path = os.path.join(outdir, 'r50_legacy.pth')
    torch.save({'meta': meta, 'state_dict': sd}, path, _use_new_zipfile_serialization=False)
    print(path, os.path.getsize(path), sum(v.numel() for v in sd.values()))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    if '--r50-keys' in sys.argv:
        r50(outdir, read_keys(sys.argv[sys.argv.index('--r50-keys') + 1]))
    elif '--r50' in sys.argv:
        r50(outdir, r50_keys())
    if '--r50' in sys.argv or '--r50-keys' in sys.argv:
        if '--only-r50' in sys.argv:
            return
    expected = {}
    _, sd = module_state_dict()
    save_both(sd, outdir, 'module', expected)
    save_both(mmdet_checkpoint(), outdir, 'mmdet', expected)
    save_both(dtype_tensors(), outdir, 'dtypes', expected)
    save_both(view_tensors(), outdir, 'views', expected)
    save_both(misc_values(), outdir, 'misc', expected)
    from safetensors.torch import save_file
    st = collections.OrderedDict((k, v) for k, v in dtype_tensors().items())
    save_file(st, os.path.join(outdir, 'dtypes.safetensors'), metadata={'format': 'pt', 'note': 'fixture'})
    expected['dtypes.safetensors'] = expected['dtypes']
    with open(os.path.join(outdir, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)


if __name__ == '__main__':
    main()
