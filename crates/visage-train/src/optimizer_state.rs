//! Adam's state across a resume. burn keys an optimizer's per-parameter state (the moment
//! estimates and the step count) by [`ParamId`]; a network rebuilt from a checkpoint's model
//! file gets fresh ids, so a checkpoint also keeps the ids in the module's parameter order
//! ([`param_ids`]) and a resume gives them back ([`assign_param_ids`]) before loading the
//! state ([`restore_optimizer`]). The run then continues with the moments it had.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Bytes, Tensor};

/// The ids of `module`'s float parameters, in visiting order.
pub fn param_ids<M: Module>(module: &M) -> Vec<u64> {
    struct Ids(Vec<u64>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut v = Ids(Vec::new());
    module.visit(&mut v);
    v.0
}

/// `module` with its float parameters' ids replaced, in visiting order, by `ids` (those
/// [`param_ids`] read from the same network structure); an error when the counts differ.
pub fn assign_param_ids<M: Module>(module: M, ids: &[u64]) -> Result<M, String> {
    let have = param_ids(&module).len();
    if have != ids.len() {
        return Err(format!("the optimizer state is for {} parameters, the network has {have}", ids.len()));
    }
    struct Assign<'a>(&'a [u64], usize);
    impl ModuleMapper for Assign<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = param.consume();
            let id = ParamId::from(self.0[self.1]);
            self.1 += 1;
            Param::from_mapped_value(id, value, mapper)
        }
    }
    Ok(module.map(&mut Assign(ids, 0)))
}

/// The optimizer's state as bytes (burn's burnpack format).
pub fn optimizer_bytes(optim: &ModuleOptimizer) -> Result<Vec<u8>, String> {
    optim.into_bytes().map(|b| b.to_vec()).map_err(|e| format!("serialising the optimizer state: {e}"))
}

/// `optim` with the state [`optimizer_bytes`] wrote.
pub fn restore_optimizer(optim: ModuleOptimizer, bytes: Vec<u8>) -> Result<ModuleOptimizer, String> {
    optim.from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| format!("reading the optimizer state: {e}"))
}
