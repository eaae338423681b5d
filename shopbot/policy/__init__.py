"""The shop's policy documents as a searchable, citable index (retrieval-augmented answers).

documents (fixtures/policies/*.md)
  -> corpus: chunks per heading section, content-hash ids, anchors
  -> index: chromadb (local or server), embedded by embeddings.MiniLMEmbedding, offline
  -> search: dense + heading + passage vectors and BM25, fused (retrieval, lexical)
  -> PolicyHit: text plus document, section and anchor for the citation
facts: do the documents' numbers agree with PolicyConfig?
evaluation: recall@k and MRR on fixtures/policy_qa.yaml
"""

from shopbot.policy.corpus import PolicyChunk, PolicyDocument, load_chunks, load_documents
from shopbot.policy.embeddings import MiniLMEmbedding
from shopbot.policy.evaluation import RetrievalReport, evaluate_retrieval, load_questions
from shopbot.policy.facts import check_policy_numbers, untagged_numbers
from shopbot.policy.index import IndexSummary, PolicyHit, PolicyIndex, SearchMode, connect
from shopbot.policy.retrieval import DENSE, HYBRID, Fusion

__all__ = [
    "DENSE",
    "HYBRID",
    "Fusion",
    "IndexSummary",
    "MiniLMEmbedding",
    "PolicyChunk",
    "PolicyDocument",
    "PolicyHit",
    "PolicyIndex",
    "RetrievalReport",
    "SearchMode",
    "check_policy_numbers",
    "connect",
    "evaluate_retrieval",
    "load_chunks",
    "load_documents",
    "load_questions",
    "untagged_numbers",
]
