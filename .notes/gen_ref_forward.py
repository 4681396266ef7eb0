import json, math, struct, sys, os
sys.path.insert(0, "/work/main/scripts")
import check_checkpoint as cc
d = sys.argv[1]; case = json.load(open(sys.argv[2]))
cfg = json.load(open(d + "/config.json"))
ents, start = cc.read_file(d + "/model.safetensors", [])
W = {}
raw = open(d + "/model.safetensors", "rb").read()
for k, v in ents:
    b, e = v["data_offsets"]; x = cc.decode(raw[start+b:start+e], v["dtype"])
    if len(v["shape"]) == 2:
        r, c = v["shape"]; x = [x[i*c:(i+1)*c] for i in range(r)]
    W[k] = x
H=cfg["hidden_size"]; Hq=cfg["num_attention_heads"]; Hkv=cfg["num_key_value_heads"]; D=cfg["head_dim"]; eps=cfg["rms_norm_eps"]; th=cfg["rope_theta"]
def rms(x, w):
    s = 1/math.sqrt(sum(a*a for a in x)/len(x) + eps); return [a*s*b for a, b in zip(x, w)]
def mv(M, x): return [sum(a*b for a, b in zip(row, x)) for row in M]
def rope(v, p):
    h = D//2; out = v[:]
    for i in range(h):
        f = p / th**(2*i/D); c, s = math.cos(f), math.sin(f)
        out[i] = v[i]*c - v[i+h]*s; out[i+h] = v[i+h]*c + v[i]*s
    return out
ids = case["ids"]; T = len(ids)
x = [W["model.embed_tokens.weight"][t][:] for t in ids]
for l in range(cfg["num_hidden_layers"]):
    p = f"model.layers.{l}."
    xn = [rms(a, W[p+"input_layernorm.weight"]) for a in x]
    Q=[];K=[];Vv=[]
    for t in range(T):
        q = mv(W[p+"self_attn.q_proj.weight"], xn[t]); k = mv(W[p+"self_attn.k_proj.weight"], xn[t]); v = mv(W[p+"self_attn.v_proj.weight"], xn[t])
        Q.append([rope(rms(q[h*D:(h+1)*D], W[p+"self_attn.q_norm.weight"]), t) for h in range(Hq)])
        K.append([rope(rms(k[h*D:(h+1)*D], W[p+"self_attn.k_norm.weight"]), t) for h in range(Hkv)])
        Vv.append([v[h*D:(h+1)*D] for h in range(Hkv)])
    g = Hq//Hkv
    for t in range(T):
        att = []
        for h in range(Hq):
            kh = h//g
            sc = [sum(a*b for a,b in zip(Q[t][h], K[s][kh]))/math.sqrt(D) for s in range(t+1)]
            m = max(sc); e = [math.exp(a-m) for a in sc]; z = sum(e)
            o = [sum(e[s]/z*Vv[s][kh][i] for s in range(t+1)) for i in range(D)]
            att += o
        ao = mv(W[p+"self_attn.o_proj.weight"], att)
        x[t] = [a+b for a,b in zip(x[t], ao)]
        hn = rms(x[t], W[p+"post_attention_layernorm.weight"])
        gg = mv(W[p+"mlp.gate_proj.weight"], hn); uu = mv(W[p+"mlp.up_proj.weight"], hn)
        hh = [a/(1+math.exp(-a))*b for a,b in zip(gg,uu)]
        x[t] = [a+b for a,b in zip(x[t], mv(W[p+"mlp.down_proj.weight"], hh))]
    print("layer", l, "rms", [round(math.sqrt(sum(a*a for a in r)/H),2) for r in x][:6])
head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
allv=[]; margins=[]; am=[]
for t in range(T):
    lg = mv(head, rms(x[t], W["model.norm.weight"])); allv += lg
    s = sorted(lg, reverse=True); margins.append(round(s[0]-s[1],3)); am.append(lg.index(s[0]))
m = sum(allv)/len(allv); sd = math.sqrt(sum((a-m)**2 for a in allv)/len(allv))
print("logit std %.3f max %.3f" % (sd, max(abs(a) for a in allv)), "margins", margins)
print("argmax", am, "ids", ids)
if len(sys.argv) > 3:
    import struct as _s
    raw = open(sys.argv[3], "rb").read(); eng = _s.unpack(f"<{len(raw)//4}f", raw)
    last = mv(head, rms(x[T-1], W["model.norm.weight"]))
    print("max |engine - python| on last row: %.2e (max |logit| %.2f)" % (max(abs(a-b) for a, b in zip(eng, last)), max(abs(a) for a in last)))
