from tests.eval.conftest import eval_policy

__all__ = ["eval_policy"]
