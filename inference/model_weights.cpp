// SPDX-License-Identifier: GPL-3.0-or-later
#include "model_weights.h"

#include <set>

namespace folio::inference {
namespace {

// Builds names and shapes in one place so that the expected list and the binding agree.
class LayoutVisitor {
  public:
    virtual ~LayoutVisitor() = default;
    virtual void tensor(TensorView* slot, const std::string& name, std::vector<int64_t> shape) = 0;
};

void visitMlp(LayoutVisitor& v, MlpWeights* w, const std::string& prefix,
              const std::string& gateName, const std::string& upName, const std::string& downName,
              int64_t hidden, int64_t inner) {
    v.tensor(w ? &w->gate : nullptr, prefix + gateName + ".weight", {inner, hidden});
    v.tensor(w ? &w->up : nullptr, prefix + upName + ".weight", {inner, hidden});
    v.tensor(w ? &w->down : nullptr, prefix + downName + ".weight", {hidden, inner});
}

void visitLayout(const ModelConfig& c, ModelWeights* m, LayoutVisitor& v) {
    const int64_t D = c.hiddenSize;
    v.tensor(m ? &m->embedTokens : nullptr, "model.embed_tokens.weight", {c.vocabSize, D});
    v.tensor(m ? &m->finalNorm : nullptr, "model.norm.weight", {D});
    if (!c.tieWordEmbeddings)
        v.tensor(m ? &m->lmHead : nullptr, "lm_head.weight", {c.vocabSize, D});
    if (m) {
        m->layers.resize(static_cast<size_t>(c.numLayers));
    }
    for (int64_t i = 0; i < c.numLayers; ++i) {
        LayerWeights* l = m ? &m->layers[static_cast<size_t>(i)] : nullptr;
        const std::string p = cat("model.layers.", i, ".");
        const std::string a = p + "self_attn.";
        if (l) {
            l->kind = c.layerKind(i);
            l->moe = c.isMoeLayer(i);
        }
        v.tensor(l ? &l->inputNorm : nullptr, p + "input_layernorm.weight", {D});
        v.tensor(l ? &l->postAttentionNorm : nullptr, p + "post_attention_layernorm.weight", {D});
        if (c.layerKind(i) == LayerKind::Kda) {
            KdaWeights* k = l ? &l->kda : nullptr;
            const int64_t H = c.kdaNumHeads, d = c.kdaHeadDim, P = H * d, W = c.convKernelSize;
            v.tensor(k ? &k->qProj : nullptr, a + "q_proj.weight", {P, D});
            v.tensor(k ? &k->kProj : nullptr, a + "k_proj.weight", {P, D});
            v.tensor(k ? &k->vProj : nullptr, a + "v_proj.weight", {P, D});
            v.tensor(k ? &k->qConv : nullptr, a + "q_conv1d.weight", {P, 1, W});
            v.tensor(k ? &k->kConv : nullptr, a + "k_conv1d.weight", {P, 1, W});
            v.tensor(k ? &k->vConv : nullptr, a + "v_conv1d.weight", {P, 1, W});
            v.tensor(k ? &k->fA : nullptr, a + "f_a_proj.weight", {d, D});
            v.tensor(k ? &k->fB : nullptr, a + "f_b_proj.weight", {P, d});
            v.tensor(k ? &k->aLog : nullptr, a + "A_log", {1, 1, H, 1});
            v.tensor(k ? &k->dtBias : nullptr, a + "dt_bias", {P});
            v.tensor(k ? &k->bProj : nullptr, a + "b_proj.weight", {H, D});
            v.tensor(k ? &k->gA : nullptr, a + "g_a_proj.weight", {d, D});
            v.tensor(k ? &k->gB : nullptr, a + "g_b_proj.weight", {P, d});
            v.tensor(k ? &k->oNorm : nullptr, a + "o_norm.weight", {d});
            v.tensor(k ? &k->oProj : nullptr, a + "o_proj.weight", {D, P});
        } else {
            MlaWeights* q = l ? &l->mla : nullptr;
            const int64_t H = c.numAttentionHeads;
            if (c.qLoraRank) {
                if (q) {
                    q->qA.emplace();
                    q->qANorm.emplace();
                    q->qB.emplace();
                }
                v.tensor(q ? &*q->qA : nullptr, a + "q_a_proj.weight", {*c.qLoraRank, D});
                v.tensor(q ? &*q->qANorm : nullptr, a + "q_a_layernorm.weight", {*c.qLoraRank});
                v.tensor(q ? &*q->qB : nullptr, a + "q_b_proj.weight",
                         {H * c.qkHeadDim(), *c.qLoraRank});
            } else {
                if (q)
                    q->qProj.emplace();
                v.tensor(q ? &*q->qProj : nullptr, a + "q_proj.weight", {H * c.qkHeadDim(), D});
            }
            v.tensor(q ? &q->kvA : nullptr, a + "kv_a_proj_with_mqa.weight",
                     {c.kvLoraRank + c.qkRopeHeadDim, D});
            v.tensor(q ? &q->kvANorm : nullptr, a + "kv_a_layernorm.weight", {c.kvLoraRank});
            v.tensor(q ? &q->kvB : nullptr, a + "kv_b_proj.weight",
                     {H * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank});
            v.tensor(q ? &q->oProj : nullptr, a + "o_proj.weight", {D, H * c.vHeadDim});
        }
        if (c.isMoeLayer(i)) {
            MoeWeights* e = l ? &l->experts : nullptr;
            const std::string b = p + "block_sparse_moe.";
            v.tensor(e ? &e->router : nullptr, b + "gate.weight", {c.numExperts, D});
            v.tensor(e ? &e->correctionBias : nullptr, b + "gate.e_score_correction_bias",
                     {c.numExperts});
            if (e)
                e->experts.resize(static_cast<size_t>(c.numExperts));
            for (int64_t x = 0; x < c.numExperts; ++x) {
                visitMlp(v, e ? &e->experts[static_cast<size_t>(x)] : nullptr,
                         cat(b, "experts.", x, "."), "w1", "w3", "w2", D, c.moeIntermediateSize);
            }
            if (c.numSharedExperts > 0) {
                if (e)
                    e->shared.emplace();
                visitMlp(v, e ? &*e->shared : nullptr, b + "shared_experts.", "gate_proj",
                         "up_proj", "down_proj", D, c.moeIntermediateSize * c.numSharedExperts);
            }
        } else {
            visitMlp(v, l ? &l->dense : nullptr, p + "mlp.", "gate_proj", "up_proj", "down_proj", D,
                     c.intermediateSize);
        }
    }
}

class ExpectedCollector : public LayoutVisitor {
  public:
    std::vector<ExpectedTensor> list;
    void tensor(TensorView*, const std::string& name, std::vector<int64_t> shape) override {
        list.push_back({name, std::move(shape)});
    }
};

class Binder : public LayoutVisitor {
  public:
    explicit Binder(const Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

    void tensor(TensorView* slot, const std::string& name, std::vector<int64_t> shape) override {
        used_.insert(name);
        const TensorView* found = checkpoint_.find(name);
        if (found == nullptr) {
            missing_.push_back(name);
            return;
        }
        if (!std::equal(found->shape.begin(), found->shape.end(), shape.begin(), shape.end())) {
            problems_.push_back(cat(name, " has shape ", found->shapeString(), ", expected ",
                                    shapeToString(shape)));
            return;
        }
        if (!isFloatingWeightType(found->dtype)) {
            problems_.push_back(
                cat(name, " has dtype ", dtypeName(found->dtype), ", expected BF16, F16 or F32"));
            return;
        }
        *slot = *found;
    }

    Status finish() const {
        std::vector<std::string> unexpected;
        for (const TensorView& v : checkpoint_.tensors()) {
            if (used_.find(std::string(v.name)) == used_.end())
                unexpected.emplace_back(v.name);
        }
        std::string message;
        auto section = [&](const char* title, const std::vector<std::string>& items) {
            if (items.empty())
                return;
            if (!message.empty())
                message += "; ";
            message += cat(items.size(), " ", title, ": ");
            const size_t shown = std::min<size_t>(items.size(), 8);
            for (size_t i = 0; i < shown; ++i)
                message += (i ? ", " : "") + items[i];
            if (items.size() > shown)
                message += cat(" and ", items.size() - shown, " more");
        };
        section("missing tensor(s)", missing_);
        section("misshapen tensor(s)", problems_);
        section("unexpected tensor(s)", unexpected);
        if (message.empty())
            return {};
        return makeError(ErrorCode::Format, "the checkpoint does not match config.json: ", message);
    }

  private:
    const Checkpoint& checkpoint_;
    std::set<std::string> used_;
    std::vector<std::string> missing_;
    std::vector<std::string> problems_;
};

}  // namespace

std::vector<ExpectedTensor> expectedTensors(const ModelConfig& config) {
    ExpectedCollector collector;
    visitLayout(config, nullptr, collector);
    return std::move(collector.list);
}

Result<ModelWeights> bindModelWeights(const ModelConfig& config, const Checkpoint& checkpoint) {
    ModelWeights weights;
    Binder binder(checkpoint);
    visitLayout(config, &weights, binder);
    FOLIO_TRY(binder.finish());
    if (config.tieWordEmbeddings)
        weights.lmHead = weights.embedTokens;
    return weights;
}

}  // namespace folio::inference
