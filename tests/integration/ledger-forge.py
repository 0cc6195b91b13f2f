# SPDX-License-Identifier: Apache-2.0
# ledger-forge.py MODE LEDGER ...: what an attacker who can write the
# ledger directory but has no audit key can do (test-audit.sh checks that
# the tool and the log catch it).
#   append LEDGER 0 N    append N forged records, chained, unsigned
#   rollback LEDGER K N  keep up to checkpoint K, rewrite the head to
#                        match, then append N forged records
#   highs LEDGER         the last checkpoint's s made high (n - s), head to match
import hashlib, struct, sys
def frames(b):
    off=0; out=[]
    while off < len(b):
        l=struct.unpack('>I', b[off:off+4])[0]; out.append((off, b[off:off+8+l])); off+=8+l
    return out
def cuint(major, v):
    m=major<<5
    if v<24: return bytes([m|v])
    if v<256: return bytes([m|24,v])
    if v<65536: return bytes([m|25])+struct.pack('>H',v)
    if v<2**32: return bytes([m|26])+struct.pack('>I',v)
    return bytes([m|27])+struct.pack('>Q',v)
def tstr(s): s=s.encode(); return cuint(3,len(s))+s
def bstr(s): return cuint(2,len(s))+s
def record(seq, prev, t, event, extra):
    items=[(0,cuint(0,seq)),(1,bstr(prev)),(2,cuint(0,t)),(3,tstr(event))]+extra
    body=cuint(5,len(items))+b''.join(cuint(0,k)+v for k,v in items)
    return struct.pack('>I',len(body))+body+struct.pack('>I',len(body))
def head(seq, off, h, sig):
    return bytes([0xa5,0,1,1])+cuint(0,seq)+bytes([2])+cuint(0,off)+bytes([3,0x58,32])+h+bytes([4,0x58,len(sig)])+sig
mode=sys.argv[1]; path=sys.argv[2]
b=open(path,'rb').read(); fr=frames(b)
# checkpoints: frame record starts with 0xd2
cps=[i for i,(o,f) in enumerate(fr) if f[4]==0xd2]
if mode=='highs':
    # The last checkpoint's ES256 s replaced by n - s (a valid signature
    # too), its head rewritten to match: one more encoding of it.
    n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    i=cps[-1]; o,f=fr[i]
    sig=bytearray(f[4:-4][-64:])
    s_=int.from_bytes(sig[32:],'big'); sig[32:]=(n-s_).to_bytes(32,'big')
    nf=f[:-4-64]+bytes(sig)+f[-4:]
    b=b[:o]+nf+b[o+len(f):]
    open(path,'wb').write(b)
    open(path+'.head','wb').write(head(i,o,hashlib.sha256(nf).digest(),bytes(sig)))
    sys.exit(0)
if mode=='rollback':
    k=int(sys.argv[3])  # keep up to checkpoint index k
    i=cps[k]; o,f=fr[i]
    b=b[:o+len(f)]; fr=fr[:i+1]
    sig=f[4:-4][-64:]
    open(path+'.head','wb').write(head(i,o,hashlib.sha256(f).digest(),sig))
seq=len(fr); prev=hashlib.sha256(fr[-1][1]).digest()
n=int(sys.argv[4]) if len(sys.argv)>4 else 1
for j in range(n):
    r=record(seq, prev, 1700000000000, "gated-deny", [(4,tstr("s")),(6,bstr(b"k1")),(8,tstr("decrypt")),(9,tstr("deny")),(10,tstr("FORGED: no verdict")),(16,cuint(0,4242)),(17,cuint(0,0))])
    b+=r; prev=hashlib.sha256(r).digest(); seq+=1
open(path,'wb').write(b)
