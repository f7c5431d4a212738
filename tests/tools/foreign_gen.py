#!/usr/bin/env python3
"""foreign_gen.py - build and edit images of formats qemu-img cannot write
(dmg, bochs, cloop) and variants it cannot make (differencing VHD and
VHDX, VHD blocks other than 2 MiB), from the published layouts, for
tests/it/formats_foreign_b*.sh and the fz_foreign seeds.

  foreign_gen.py dmg IN.raw OUT [--rsrc] [--bzip2] [--chunk SECTORS]
  foreign_gen.py bochs IN.raw OUT [--extent BYTES] [--v1]
  foreign_gen.py cloop IN.raw OUT [--block BYTES]
  foreign_gen.py vpc IN.raw OUT [--block BYTES]
  foreign_gen.py vpc-diff IN.vhd OUT PARENT [--clear-half BLOCK]
  foreign_gen.py vpc-fix FILE           recompute both footer checksums
  foreign_gen.py vhdx-diff IN.vhdx OUT PARENT
  foreign_gen.py vhdx-fix FILE          recompute header/region CRC-32Cs
  foreign_gen.py poke FILE OFFSET FMT VALUE   struct-pack VALUE at OFFSET

IN.raw is the guest view; qemu-img must then read OUT back to IN.raw
(`qemu-img convert -O raw`), which is what the test checks.  Nothing here
is read by imgraph itself.
"""
import argparse
import base64
import bz2
import os
import struct
import sys
import zlib

SECTOR = 512


def chunks_of(data, size):
    for off in range(0, len(data), size):
        yield off, data[off:off + size]


# ---- DMG (UDIF) -------------------------------------------------------------
DMG_ZERO_FILL, DMG_RAW, DMG_IGNORE = 0, 1, 2
DMG_ZLIB, DMG_BZIP2, DMG_COMMENT, DMG_END = 0x80000005, 0x80000006, \
    0x7ffffffe, 0xffffffff


def dmg_entries(data, first, chunk, bzip2_one, fork):
    """Chunk entries (type, sector, nsec, off, len) relative to the table,
    and the bytes they store, appended to fork (bytearray)."""
    base = len(fork)
    entries, k = [], 0
    for off, piece in chunks_of(data, chunk * SECTOR):
        nsec = len(piece) // SECTOR
        sec = off // SECTOR
        if not any(piece):
            kind = DMG_ZERO_FILL if k % 2 == 0 else DMG_IGNORE
            entries.append((kind, sec, nsec, len(fork) - base, 0))
        else:
            if bzip2_one and k == 1:
                kind, stored = DMG_BZIP2, bz2.compress(piece)
            elif k % 2 == 0:
                kind, stored = DMG_ZLIB, zlib.compress(piece)
            else:
                kind, stored = DMG_RAW, piece
            entries.append((kind, sec, nsec, len(fork) - base, len(stored)))
            fork += stored
        if k == 0:
            entries.append((DMG_COMMENT, sec, 0, 0, 0))
        k += 1
    entries.append((DMG_END, len(data) // SECTOR, 0, 0, 0))
    return entries, base


def mish(first, nsec, data_off, entries):
    hdr = struct.pack('>4sIQQQII', b'mish', 1, first, nsec, data_off, 0,
                      len(entries))
    hdr += bytes(24)                    # reserved
    hdr += struct.pack('>II', 0, 0) + bytes(128)     # checksum: none
    hdr += struct.pack('>I', len(entries))
    assert len(hdr) == 204
    for e in entries:
        hdr += struct.pack('>IIQQQQ', e[0], 0, e[1], e[2], e[3], e[4])
    return hdr


def plist(tables):
    items = ''
    for i, t in enumerate(tables):
        b64 = base64.b64encode(t).decode()
        lines = '\n'.join('\t\t\t' + b64[j:j + 52]
                          for j in range(0, len(b64), 52))
        items += ('\t\t<dict>\n\t\t\t<key>Attributes</key>\n'
                  '\t\t\t<string>0x0050</string>\n'
                  '\t\t\t<key>Data</key>\n\t\t\t<data>\n%s\n\t\t\t</data>\n'
                  '\t\t\t<key>ID</key>\n\t\t\t<string>%d</string>\n'
                  '\t\t</dict>\n' % (lines, i))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
            '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
            '<plist version="1.0">\n<dict>\n\t<key>resource-fork</key>\n'
            '\t<dict>\n\t<key>blkx</key>\n\t<array>\n%s\t</array>\n'
            '\t</dict>\n</dict>\n</plist>\n' % items).encode()


def rsrc_fork(tables):
    data = b''.join(struct.pack('>I', len(t)) + t for t in tables)
    hdr = struct.pack('>IIII', 256, 256 + len(data), len(data), 0)
    return hdr + bytes(256 - len(hdr)) + data


def make_dmg(a):
    data = open(a.input, 'rb').read()
    assert len(data) % SECTOR == 0
    half = (len(data) // SECTOR // 2) * SECTOR
    fork, tables = bytearray(), []
    # two block tables ("partitions"): table-relative sectors and offsets
    for first_byte, part in ((0, data[:half]), (half, data[half:])):
        ents, base = dmg_entries(part, first_byte // SECTOR, a.chunk,
                                 a.bzip2 and first_byte == 0, fork)
        tables.append(mish(first_byte // SECTOR, len(part) // SECTOR, base,
                           ents))
    out = bytearray(fork)
    info = rsrc_fork(tables) if a.rsrc else plist(tables)
    info_off = len(out)
    out += info
    koly = bytearray(512)
    struct.pack_into('>4sIII', koly, 0, b'koly', 4, 512, 1)
    struct.pack_into('>QQQ', koly, 0x10, 0, 0, len(fork))
    if a.rsrc:
        struct.pack_into('>QQ', koly, 0x28, info_off, len(info))
    else:
        struct.pack_into('>QQ', koly, 0xd8, info_off, len(info))
    struct.pack_into('>II', koly, 0x38, 1, 1)
    struct.pack_into('>IQ', koly, 0x1e8, 1, len(data) // SECTOR)
    out += koly
    open(a.output, 'wb').write(out)


# ---- Bochs growing redolog --------------------------------------------------
def make_bochs(a):
    data = open(a.input, 'rb').read()
    ext = a.extent
    nsec = ext // SECTOR
    bitmap_bytes = SECTOR            # one sector of bitmap per extent
    n = (len(data) + ext - 1) // ext
    hdr = bytearray(512)
    struct.pack_into('32s16s16s', hdr, 0, b'Bochs Virtual HD Image',
                     b'Redolog', b'Growing')
    if a.v1:
        struct.pack_into('<IIIIIQ', hdr, 64, 0x00010000, 512, n,
                         bitmap_bytes, ext, len(data))
    else:
        struct.pack_into('<IIIIIIQ', hdr, 64, 0x00020000, 512, n,
                         bitmap_bytes, ext, 0, len(data))
    catalog = [0xffffffff] * n
    stored = []
    # allocate in reverse guest order, so the catalog really indirects
    for idx in reversed(range(n)):
        piece = data[idx * ext:(idx + 1) * ext].ljust(ext, b'\0')
        if not any(piece):
            continue
        bm = bytearray(bitmap_bytes)
        body = bytearray()
        for s in range(nsec):
            sec = piece[s * SECTOR:(s + 1) * SECTOR]
            if any(sec):
                bm[s // 8] |= 1 << (s % 8)
                body += sec
            else:   # a clear bit: whatever is stored must not be read
                body += b'\xee' * SECTOR
        catalog[idx] = len(stored)
        stored.append(bytes(bm) + bytes(body))
    out = hdr + struct.pack('<%dI' % n, *catalog) + b''.join(stored)
    open(a.output, 'wb').write(out)


# ---- cloop V2.0 -------------------------------------------------------------
CLOOP_MAGIC = (b'#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && '
               b'mount -r -t iso9660 /dev/cloop $1\n')


def make_cloop(a):
    data = open(a.input, 'rb').read()
    bs = a.block
    assert len(data) % bs == 0
    n = len(data) // bs
    blocks = [zlib.compress(data[i * bs:(i + 1) * bs]) for i in range(n)]
    off = 128 + 8 + 8 * (n + 1)
    offsets = [off]
    for b in blocks:
        off += len(b)
        offsets.append(off)
    out = CLOOP_MAGIC.ljust(128, b'\0') + struct.pack('>II', bs, n)
    out += struct.pack('>%dQ' % (n + 1), *offsets) + b''.join(blocks)
    open(a.output, 'wb').write(out)


# ---- VHD --------------------------------------------------------------------
def vhd_sum(buf, at):
    return (~sum(b for i, b in enumerate(buf) if not at <= i < at + 4)) \
        & 0xffffffff


def vpc_fix_footer(img, off):
    f = bytearray(img[off:off + 512])
    struct.pack_into('>I', f, 64, vhd_sum(f, 64))
    img[off:off + 512] = f


def vpc_fix(a):
    img = bytearray(open(a.file, 'rb').read())
    if img[:8] == b'conectix':
        vpc_fix_footer(img, 0)
    vpc_fix_footer(img, len(img) - 512)
    open(a.file, 'wb').write(img)


def make_vpc(a):
    """A dynamic VHD with a block size qemu-img cannot choose ('qem2':
    current_size is the size); blocks that are all zeros stay unallocated,
    the others are stored with a full bitmap."""
    data = open(a.input, 'rb').read()
    bs = a.block
    assert len(data) % SECTOR == 0 and bs % SECTOR == 0
    n = (len(data) + bs - 1) // bs
    bitmap = ((bs // SECTOR + 7) // 8 + 511) // 512 * 512
    bat_off = 1536
    body = bytearray(bat_off + (4 * n + 511) // 512 * 512)
    bat = [0xffffffff] * n
    for i in range(n):
        piece = data[i * bs:(i + 1) * bs].ljust(bs, b'\0')
        if any(piece):
            bat[i] = len(body) // 512
            body += b'\xff' * bitmap + piece
    struct.pack_into('>%dI' % n, body, bat_off, *bat)
    dyn = bytearray(1024)
    struct.pack_into('>8sQQIIII', dyn, 0, b'cxsparse', 0xffffffffffffffff,
                     bat_off, 0x00010000, n, bs, 0)
    struct.pack_into('>I', dyn, 36, vhd_sum(dyn, 36))
    body[512:1536] = dyn
    f = bytearray(512)
    struct.pack_into('>8sIIQI4sI4sQQHBBI', f, 0, b'conectix', 2, 0x00010000,
                     512, 0, b'qem2', 0x00050003, b'Wi2k', len(data),
                     len(data), 0xffff, 16, 255, 3)
    struct.pack_into('>I', f, 64, vhd_sum(f, 64))
    body[0:512] = f
    open(a.output, 'wb').write(body + f)


def make_vpc_diff(a):
    img = bytearray(open(a.input, 'rb').read())
    assert img[:8] == b'conectix'
    dyn = struct.unpack_from('>Q', img, 16)[0]
    footer = bytes(img[-512:])
    body = img[:-512]
    loc_off = len(body)
    rel = a.parent.replace('/', '\\').encode('utf-16-le')
    body += rel.ljust(512, b'\0')
    # footer type 4 in both copies; dynamic header: parent name + W2ru
    name = os.path.basename(a.parent).encode('utf-16-be')
    struct.pack_into('512s', body, dyn + 64, name)
    struct.pack_into('>4sIIIQ', body, dyn + 576, b'W2ru', 1, len(rel), 0,
                     loc_off)
    struct.pack_into('>I', body, dyn + 36, 0)
    struct.pack_into('>I', body, dyn + 36,
                     vhd_sum(body[dyn:dyn + 1024], 36))
    img = body + footer
    struct.pack_into('>I', img, 60, 4)
    struct.pack_into('>I', img, len(img) - 512 + 60, 4)
    if a.clear_half is not None:
        # second half of block N: bitmap bits clear, garbage in the data
        bat = struct.unpack_from('>Q', img, dyn + 16)[0]
        bs = struct.unpack_from('>I', img, dyn + 32)[0]
        ent = struct.unpack_from('>I', img, bat + 4 * a.clear_half)[0]
        assert ent != 0xffffffff, 'block %d is not allocated' % a.clear_half
        bm = ent * 512
        nsec = bs // 512
        for s in range(nsec // 2, nsec):
            img[bm + s // 8] &= ~(0x80 >> (s % 8)) & 0xff
        data = bm + 512 * ((nsec // 8 + 511) // 512)
        img[data + bs // 2:data + bs] = b'\xee' * (bs // 2)
    vpc_fix_footer(img, 0)
    vpc_fix_footer(img, len(img) - 512)
    open(a.output, 'wb').write(img)


# ---- VHDX -------------------------------------------------------------------
def crc32c(buf):
    crc = 0xffffffff
    for b in buf:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def vhdx_fix_block(img, off, size):
    blk = bytearray(img[off:off + size])
    blk[4:8] = bytes(4)
    struct.pack_into('<I', blk, 4, crc32c(blk))
    img[off:off + size] = blk


def vhdx_fix(a, img=None):
    if img is None:
        img = bytearray(open(a.file, 'rb').read())
    for off in (64 << 10, 128 << 10):
        vhdx_fix_block(img, off, 4 << 10)
    for off in (192 << 10, 256 << 10):
        vhdx_fix_block(img, off, 64 << 10)
    if a.file:
        open(a.file, 'wb').write(img)


def guid_le(text):
    import uuid
    return uuid.UUID(text).bytes_le


def vhdx_regions(img):
    rt = 192 << 10
    n = struct.unpack_from('<I', img, rt + 8)[0]
    out = {}
    for i in range(n):
        e = rt + 16 + 32 * i
        off, ln = struct.unpack_from('<QI', img, e + 16)
        out[bytes(img[e:e + 16])] = (off, ln)
    return out


def make_vhdx_diff(a):
    img = bytearray(open(a.input, 'rb').read())
    regs = vhdx_regions(img)
    bat, _ = regs[guid_le('2dc27766-f623-4200-9d64-115e9bfd4a08')]
    meta, _ = regs[guid_le('8b7ca206-4790-4b9a-b8fe-575f050f886e')]
    n = struct.unpack_from('<H', img, meta + 10)[0]
    items = {}
    for i in range(n):
        e = meta + 32 + 32 * i
        off, ln = struct.unpack_from('<II', img, e + 16)
        items[bytes(img[e:e + 16])] = (off, ln)
    poff, _ = items[guid_le('caa16737-fa36-4d43-b3b6-33f0aa44e76b')]
    bsz, flags = struct.unpack_from('<II', img, meta + poff)
    struct.pack_into('<I', img, meta + poff + 4, flags | 2)  # HasParent
    vsize = struct.unpack_from('<Q', img, meta + items[guid_le(
        '2fa54224-cd1b-4876-b211-5dbed83bf4b8')][0])[0]
    # the parent locator item, after the other items
    kv = [('parent_linkage', '{83ed6d8f-4d1b-4b69-bd4c-9f1c5a1e1c01}'),
          ('relative_path', a.parent.replace('/', '\\')),
          ('absolute_win32_path', 'C:\\images\\' +
           os.path.basename(a.parent))]
    strings, entries = b'', []
    base = 20 + 12 * len(kv)
    for k, v in kv:
        kb, vb = k.encode('utf-16-le'), v.encode('utf-16-le')
        entries.append((base + len(strings), base + len(strings) + len(kb),
                        len(kb), len(vb)))
        strings += kb + vb
    loc = guid_le('b04aefb7-d19e-4a81-b789-25b8e9445913') + \
        struct.pack('<HH', 0, len(kv))
    for ko, vo, kl, vl in entries:
        loc += struct.pack('<IIHH', ko, vo, kl, vl)
    loc += strings
    loc_off = max(o + ln for o, ln in items.values())
    loc_off = (loc_off + 4095) & ~4095
    img[meta + loc_off:meta + loc_off + len(loc)] = loc
    e = meta + 32 + 32 * n
    img[e:e + 32] = guid_le('a8d35f2d-b30b-454d-abf7-d3d84834ab0c') + \
        struct.pack('<IIII', loc_off, len(loc), 4 | 2, 0)
    struct.pack_into('<H', img, meta + 10, n + 1)
    # the sector bitmap of chunk 0, at a new MiB at the end of the file
    lsec = 512
    cr = (1 << 23) * lsec // bsz
    assert vsize <= cr * bsz, 'one chunk only'
    sbm_off = (len(img) + (1 << 20) - 1) & ~((1 << 20) - 1)
    img += bytes(sbm_off - len(img) + (1 << 20))
    struct.pack_into('<Q', img, bat + 8 * cr, sbm_off | 6)
    # block 0 partially present: first half here, second half the parent's
    ent = struct.unpack_from('<Q', img, bat)[0]
    assert ent & 7 == 6, 'block 0 must be fully present'
    struct.pack_into('<Q', img, bat, (ent & ~7) | 7)
    per = bsz // lsec
    for sec in range(per // 2):
        img[sbm_off + sec // 8] |= 1 << (sec % 8)
    data = ent & ~((1 << 20) - 1)
    img[data + bsz // 2:data + bsz] = b'\xee' * (bsz // 2)
    open(a.output, 'wb').write(img)


# ---- hostile fixtures -------------------------------------------------------
class Hostile:
    """Writes DIR/<id>.<ext>, each one field of a pristine image made
    hostile, and DIR/MANIFEST lines: id, file, command (info: imgraph
    info; read: every byte through imgcat), field regex, description."""

    def __init__(self, d):
        self.d = d
        self.lines = []

    def src(self, name):
        return bytearray(open(os.path.join(self.d, 'pristine', name),
                              'rb').read())

    def add(self, fid, ext, img, cmd, field, desc):
        name = '%s.%s' % (fid, ext)
        open(os.path.join(self.d, name), 'wb').write(img)
        self.lines.append('\t'.join((fid, name, cmd, field, desc)))

    def write_manifest(self):
        open(os.path.join(self.d, 'MANIFEST'), 'w').write(
            '\n'.join(self.lines) + '\n')


def put(img, off, fmt, val):
    struct.pack_into(fmt, img, off, val)
    return img


def hostile_vpc(h):
    d = h.src('dyn.vhd')
    dyn = struct.unpack_from('>Q', d, 16)[0]
    bat = struct.unpack_from('>Q', d, dyn + 16)[0]
    h.add('vpc-short', 'vhd', d[:300], 'info', 'too small for a VHD footer',
          'truncated footer')
    h.add('vpc-checksum', 'vhd', put(d[:], 28, '4s', b'evil'), 'info',
          "field 'checksum'", 'footer changed, checksum not')
    x = put(d[:], 16, '>Q', 1 << 40)
    vpc_fix_footer(x, 0)
    h.add('vpc-dynhdr-eof', 'vhd', x, 'info', 'dynamic header at offset',
          'dynamic header offset past the end of the file')
    h.add('vpc-bat-huge', 'vhd', put(d[:], dyn + 28, '>I', 0xffffffff),
          'info', 'block allocation table has 4294967295 entries',
          'max_table_entries of 4 Gi')
    h.add('vpc-bat-eof', 'vhd', put(d[:], dyn + 16, '>Q', 1 << 40), 'info',
          'block allocation table at offset', 'BAT offset past the end')
    x = d[:]
    ent = next((i for i in range(64)
                if struct.unpack_from('>I', x, bat + 4 * i)[0] != 0xffffffff),
               0)
    h.add('vpc-block-eof', 'vhd', put(x, bat + 4 * ent, '>I', 0x7fffffff),
          'info', 'block allocation table entry %d' % ent,
          'an allocated block past the end of the file')
    h.add('vpc-blocksize', 'vhd', put(d[:], dyn + 32, '>I', 3 << 20), 'info',
          "field 'block_size'", 'block size not a power of two')
    x = put(d[:], 28, '4s', b'qem2')
    put(x, 48, '>Q', 1 << 50)
    vpc_fix_footer(x, 0)
    h.add('vpc-size', 'vhd', x, 'info', "field 'current_size'.*2040 GiB",
          'a size of 1 PiB')
    f = h.src('fixed.vhd')
    x = f[:1 << 20] + f[-512:]
    h.add('vpc-fixed-cut', 'vhd', x, 'info', "field 'current_size'.*truncated",
          'fixed disk cut short, footer kept')
    x = f[:]
    put(x, len(x) - 512 + 60, '>I', 7)
    vpc_fix_footer(x, len(x) - 512)
    h.add('vpc-type', 'vhd', x, 'info', "field 'disk_type'", 'disk type 7')
    c = h.src('diff.vhd')
    dyn = struct.unpack_from('>Q', c, 16)[0]
    h.add('vpc-locator', 'vhd', put(c[:], dyn + 576 + 8, '>I', 1 << 20),
          'info', r"field 'parent_locator\[0\]'", 'a 1 MiB parent locator')
    h.add('vpc-locator-eof', 'vhd', put(c[:], dyn + 576 + 16, '>Q', 1 << 40),
          'info', r'parent_locator\[0\] at offset',
          'parent locator past the end of the file')


def hostile_vhdx(h):
    d = h.src('x.vhdx')
    regs = vhdx_regions(d)
    bat, _ = regs[guid_le('2dc27766-f623-4200-9d64-115e9bfd4a08')]
    meta, _ = regs[guid_le('8b7ca206-4790-4b9a-b8fe-575f050f886e')]
    rt = 192 << 10
    ebat = next(rt + 16 + 32 * i for i in range(2)
                if bytes(d[rt + 16 + 32 * i:rt + 32 + 32 * i]) ==
                guid_le('2dc27766-f623-4200-9d64-115e9bfd4a08'))
    items = {}
    for i in range(struct.unpack_from('<H', d, meta + 10)[0]):
        e = meta + 32 + 32 * i
        items[bytes(d[e:e + 16])] = (e, meta + struct.unpack_from(
            '<I', d, e + 16)[0])
    pe, params = items[guid_le('caa16737-fa36-4d43-b3b6-33f0aa44e76b')]
    _, vsize = items[guid_le('2fa54224-cd1b-4876-b211-5dbed83bf4b8')]

    def fixed(img):
        vhdx_fix(argparse.Namespace(file=None), img)
        return img
    h.add('vhdx-short', 'vhdx', d[:100 << 10], 'info', 'header 2 at offset',
          'truncated in the second header')
    x = d[:]
    x[(64 << 10) + 200] ^= 1
    x[(128 << 10) + 200] ^= 1
    h.add('vhdx-headers', 'vhdx', x, 'info', "field 'header'.*either copy",
          'both headers fail their CRC-32C')
    x = put(d[:], (64 << 10) + 48, '<Q', 1)
    h.add('vhdx-log', 'vhdx', fixed(put(x, (128 << 10) + 48, '<Q', 1)),
          'info', "field 'LogGuid'", 'a log that would need replaying')
    h.add('vhdx-rt-count', 'vhdx', fixed(put(d[:], rt + 8, '<I', 5000)),
          'info', "field 'region table EntryCount'", '5000 regions')
    x = d[:]
    x[rt + 100] ^= 1
    h.add('vhdx-rt-crc', 'vhdx', x, 'info', 'region table checksum',
          'region table fails its CRC-32C')
    h.add('vhdx-overlap', 'vhdx', fixed(put(d[:], ebat + 16, '<Q', meta)),
          'info', 'region .*overlaps the (BAT|metadata) region',
          'BAT region on top of the metadata region')
    h.add('vhdx-bat-eof', 'vhdx', fixed(put(d[:], ebat + 16, '<Q', 1 << 45)),
          'info', 'BAT at offset', 'BAT region past the end of the file')
    h.add('vhdx-bat-small', 'vhdx', fixed(put(d[:], ebat + 24, '<I', 8)),
          'info', "field 'BAT region'", 'BAT region of 8 bytes')
    h.add('vhdx-blocksize', 'vhdx', put(d[:], params, '<I', 3 << 20), 'info',
          "field 'BlockSize'", 'block size not a power of two')
    h.add('vhdx-vsize', 'vhdx', put(d[:], vsize, '<Q', 1 << 60), 'info',
          "field 'VirtualDiskSize'", 'a virtual size of 1 EiB')
    h.add('vhdx-item', 'vhdx', put(d[:], pe + 16, '<I', 0x7ffffff0), 'info',
          "metadata item 'file parameters'", 'item offset past its region')
    x = d[:]
    ent = struct.unpack_from('<Q', x, bat)[0]
    assert ent & 7 == 6
    h.add('vhdx-block-eof', 'vhdx', put(x, bat, '<Q', (1 << 40) | 6), 'info',
          'BAT entry 0: payload block.*truncated',
          'a present block past the end of the file')
    h.add('vhdx-state', 'vhdx', put(d[:], bat, '<Q', (ent & ~7) | 4), 'info',
          'BAT entry 0.*state 4', 'block state 4')
    h.add('vhdx-block-header', 'vhdx', put(d[:], bat, '<Q', 6), 'info',
          'overlaps the header section', 'a block inside the header section')
    c = h.src('diff.vhdx')
    cm = vhdx_regions(c)[guid_le('8b7ca206-4790-4b9a-b8fe-575f050f886e')][0]
    n = struct.unpack_from('<H', c, cm + 10)[0]
    le = cm + 32 + 32 * (n - 1)         # the locator: added last
    loc = cm + struct.unpack_from('<I', c, le + 16)[0]
    h.add('vhdx-locator', 'vhdx', put(c[:], loc + 18, '<H', 0xffff), 'info',
          "field 'parent locator'.*65535 entries",
          'a parent locator with 65535 entries')


def hostile_simple(h):
    v = h.src('dyn.vdi')
    h.add('vdi-short', 'vdi', v[:200], 'info', 'header at offset 0',
          'truncated header')
    h.add('vdi-blocks', 'vdi', put(v[:], 384, '<I', 0x7fffffff), 'info',
          'block map has 2147483647 entries', '2 Gi blocks')
    h.add('vdi-blocksize', 'vdi', put(v[:], 376, '<I', 4096), 'info',
          "field 'block_size'", '4 KiB blocks')
    h.add('vdi-parent', 'vdi', put(v[:], 440, '<I', 1), 'info',
          "field 'uuid_parent'", 'a parent UUID')
    bmap = struct.unpack_from('<I', v, 340)[0]
    h.add('vdi-block-eof', 'vdi', put(v[:], bmap, '<I', 0x10000), 'info',
          'block map entry 0.*truncated', 'a block past the end of the file')
    p = h.src('p.hds')
    h.add('prl-bat', 'hds', put(p[:], 32, '<I', 0x7fffffff), 'info',
          'BAT has 2147483647 entries', '2 Gi BAT entries')
    h.add('prl-tracks', 'hds', put(p[:], 28, '<I', 0), 'info',
          "field 'tracks'", 'zero sectors per cluster')
    h.add('prl-entry', 'hds', put(p[:], 64, '<I', 0x7fffffff), 'info',
          'BAT entry 0.*truncated', 'a cluster past the end of the file')
    h.add('prl-size', 'hds', put(p[:], 36, '<Q', 1 << 62), 'info',
          "field 'nb_sectors'", '2^62 sectors')
    b = h.src('v2.bochs')
    h.add('bochs-catalog', 'bochs', put(b[:], 72, '<I', 0x200000), 'info',
          "field 'catalog'", '2 Mi catalog entries')
    h.add('bochs-extent', 'bochs', put(b[:], 80, '<I', 1000), 'info',
          "field 'extent'", 'extent not a power of two')
    h.add('bochs-bitmap', 'bochs', put(b[:], 76, '<I', 0), 'info',
          "field 'bitmap'", 'an empty bitmap')
    h.add('bochs-disk', 'bochs', put(b[:], 88, '<Q', 1 << 50), 'info',
          "field 'catalog'.*needs", 'a disk the catalog cannot cover')
    h.add('bochs-entry', 'bochs', put(b[:], 512 + 4 * 3, '<I', 0x7ffffff0),
          'info', 'catalog entry 3.*truncated',
          'an extent past the end of the file')
    c = h.src('c.cloop')
    h.add('cloop-blocks', 'cloop', put(c[:], 132, '>I', 0x7fffffff), 'info',
          'offsets has 2147483648 entries', '2 Gi blocks')
    h.add('cloop-order', 'cloop', put(c[:], 136 + 8 * 2, '>Q', 0), 'info',
          r'offsets\[2\].*increase', 'offsets going backwards')
    h.add('cloop-blocksize', 'cloop', put(c[:], 128, '>I', 1000), 'info',
          "field 'block_size'", 'a block size of 1000')
    n = struct.unpack_from('>I', c, 132)[0]
    h.add('cloop-eof', 'cloop', put(c[:], 136 + 8 * n, '>Q', len(c) + 100),
          'info',
          r'offsets\[%d\].*truncated' % n, 'the last block past the end')
    x = c[:]
    o = struct.unpack_from('>Q', x, 136)[0]
    x[o + 10:o + 20] = b'\xff' * 10
    h.add('cloop-zlib', 'cloop', x, 'read', 'cloop block 0.*zlib',
          'a block that is not a zlib stream')


def hostile_dmg(h):
    d = h.src('rsrc.dmg')
    koly = len(d) - 512
    m = d.find(b'mish')
    assert m > 0
    c0 = m + 204
    h.add('dmg-nokoly', 'dmg', put(d[:], koly, '4s', b'kolx'), 'info',
          "field 'koly'", 'no koly trailer')
    h.add('dmg-sectors', 'dmg', put(d[:], koly + 0x1ec, '>Q', 1 << 62),
          'info', "field 'SectorCount'", '2^62 sectors')
    h.add('dmg-rsrc', 'dmg', put(d[:], koly + 0x30, '>Q', 1 << 40), 'info',
          "field 'RsrcForkOffset'", 'a resource fork past the trailer')
    h.add('dmg-chunk-count', 'dmg', put(d[:], c0 + 0x10, '>Q', 1 << 40),
          'info', 'chunk 0: its sector count', 'a chunk of 2^40 sectors')
    h.add('dmg-chunk-eof', 'dmg', put(d[:], c0 + 0x18, '>Q', 1 << 40),
          'info', 'chunk 0: .*past the end of the file',
          'chunk data past the end of the file')
    h.add('dmg-overlap', 'dmg', put(d[:], c0 + 80 + 8, '>Q', 0), 'info',
          'chunks overlap', 'two chunks for the same sectors')
    x = d[:]
    off = struct.unpack_from('>Q', x, c0 + 0x18)[0]
    x[off + 4:off + 40] = b'\x00' * 36
    h.add('dmg-zlib', 'dmg', x, 'read', 'dmg chunk at .*zlib',
          'a zlib chunk that does not inflate')
    p = h.src('plist.dmg')
    koly = len(p) - 512
    h.add('dmg-xml-len', 'dmg', put(p[:], koly + 0xe0, '>Q', 1 << 40), 'info',
          "field 'XMLOffset'", 'a property list past the trailer')
    x = p[:]
    i = x.rfind(b'</data>')
    x[i:i + 7] = b'</dat!>'
    h.add('dmg-xml-open', 'dmg', x, 'info', 'data> element at .* not closed',
          'an unclosed <data> element')


def hostile(a):
    h = Hostile(a.dir)
    hostile_vpc(h)
    hostile_vhdx(h)
    hostile_simple(h)
    hostile_dmg(h)
    h.write_manifest()


def poke(a):
    with open(a.file, 'r+b') as f:
        f.seek(int(a.offset, 0))
        f.write(struct.pack(a.fmt, int(a.value, 0)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('dmg')
    s.add_argument('input'), s.add_argument('output')
    s.add_argument('--rsrc', action='store_true')
    s.add_argument('--bzip2', action='store_true')
    s.add_argument('--chunk', type=int, default=64)
    s.set_defaults(fn=make_dmg)
    s = sub.add_parser('bochs')
    s.add_argument('input'), s.add_argument('output')
    s.add_argument('--extent', type=int, default=65536)
    s.add_argument('--v1', action='store_true')
    s.set_defaults(fn=make_bochs)
    s = sub.add_parser('cloop')
    s.add_argument('input'), s.add_argument('output')
    s.add_argument('--block', type=int, default=65536)
    s.set_defaults(fn=make_cloop)
    s = sub.add_parser('vpc')
    s.add_argument('input'), s.add_argument('output')
    s.add_argument('--block', type=int, default=4096)
    s.set_defaults(fn=make_vpc)
    s = sub.add_parser('vpc-diff')
    s.add_argument('input'), s.add_argument('output'), s.add_argument('parent')
    s.add_argument('--clear-half', type=int)
    s.set_defaults(fn=make_vpc_diff)
    s = sub.add_parser('vpc-fix')
    s.add_argument('file')
    s.set_defaults(fn=vpc_fix)
    s = sub.add_parser('vhdx-diff')
    s.add_argument('input'), s.add_argument('output'), s.add_argument('parent')
    s.set_defaults(fn=make_vhdx_diff)
    s = sub.add_parser('vhdx-fix')
    s.add_argument('file')
    s.set_defaults(fn=vhdx_fix)
    s = sub.add_parser('hostile')
    s.add_argument('dir')
    s.set_defaults(fn=hostile)
    s = sub.add_parser('poke')
    s.add_argument('file'), s.add_argument('offset'), s.add_argument('fmt')
    s.add_argument('value')
    s.set_defaults(fn=poke)
    a = p.parse_args()
    a.fn(a)


if __name__ == '__main__':
    sys.exit(main())
