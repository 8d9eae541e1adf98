//! Budgets in integer units: what each program and funder has spent and reserved, and whether a
//! charge fits (MODEL.md, *Budgets, pacing and the first-come rule*). Never overrun by one unit.

use super::{Outcome, Plan};
use crate::scenario::Units;

#[derive(Clone, Debug)]
pub struct Ledger {
    pub program_spent: Vec<Units>,
    pub funder_spent: Vec<u128>,
    /// Traffic programs' reservations during a tick's phases 1–2 (released after phase 2).
    pub funder_reserved: Vec<u128>,
    caps: Vec<Option<Units>>,
}

impl Ledger {
    pub fn new(plan: &Plan) -> Self {
        let s = plan.scenario;
        Ledger {
            program_spent: vec![0; s.programs.len()],
            funder_spent: vec![0; s.funders.len()],
            funder_reserved: vec![0; s.funders.len()],
            caps: s.funders.iter().map(|f| f.cap).collect(),
        }
    }

    /// What a funder can still commit (`None`: no cap).
    pub fn funder_room(&self, f: usize) -> Option<u128> {
        self.caps[f]
            .map(|c| u128::from(c).saturating_sub(self.funder_spent[f] + self.funder_reserved[f]))
    }

    /// What program `j` may still spend in tick `t` under pacing: C(t) − spent.
    pub fn allowance_room(&self, plan: &Plan, j: usize, t: usize) -> Units {
        if !plan.in_window[j][t] {
            return 0;
        }
        plan.allowance[j][t].saturating_sub(self.program_spent[j])
    }

    /// How many whole charges of program `j` its allowance and its funders' caps can pay in tick
    /// `t` (`u64::MAX` for a free charge).
    pub fn affordable(&self, plan: &Plan, j: usize, t: usize) -> u64 {
        if !plan.in_window[j][t] {
            return 0;
        }
        let charge = plan.charge[j];
        let mut n = self
            .allowance_room(plan, j, t)
            .checked_div(charge)
            .unwrap_or(u64::MAX);
        for &(f, part) in &plan.parts[j] {
            if let (Some(room), true) = (self.funder_room(f), part > 0) {
                n = n.min(u64::try_from(room / u128::from(part)).unwrap_or(u64::MAX));
            }
        }
        n
    }

    /// Whether one charge of program `j` fits in tick `t`.
    pub fn can_charge(&self, plan: &Plan, j: usize, t: usize) -> bool {
        self.affordable(plan, j, t) >= 1
    }

    /// Books `n` charges of program `j` (the caller checked they fit).
    pub fn charge(&mut self, plan: &Plan, j: usize, n: u64) {
        self.program_spent[j] += plan.charge[j] * n;
        for &(f, part) in &plan.parts[j] {
            self.funder_spent[f] += u128::from(part) * u128::from(n);
        }
    }

    /// Reserves (`sign` = true) or releases `n` charges of program `j` on its funders' caps.
    pub fn reserve(&mut self, plan: &Plan, j: usize, n: u64, reserve: bool) {
        for &(f, part) in &plan.parts[j] {
            let amount = u128::from(part) * u128::from(n);
            if reserve {
                self.funder_reserved[f] += amount;
            } else {
                self.funder_reserved[f] -= amount;
            }
        }
    }

    /// Whether program `j` can no longer pay one charge out of its whole budget.
    pub fn exhausted(&self, plan: &Plan, j: usize) -> bool {
        plan.scenario.programs[j].budget - self.program_spent[j] < plan.charge[j]
    }

    /// Whether program `j` can pay no charge in any tick after `t`, since spending only grows:
    /// its budget cannot pay one, its window has no tick left, or a funder's cap cannot pay its
    /// part out of what the funder has not spent (not [`Ledger::funder_room`], which also holds
    /// back a tick's reservations, released by its end).
    pub fn never_pays_after(&self, plan: &Plan, j: usize, t: usize) -> bool {
        self.exhausted(plan, j)
            || !plan.in_window[j][t + 1..].contains(&true)
            || plan.parts[j].iter().any(|&(f, part)| {
                part > 0
                    && self.caps[f].is_some_and(|c| {
                        u128::from(c).saturating_sub(self.funder_spent[f]) < u128::from(part)
                    })
            })
    }

    /// End of tick `t`: exhaustion times, remaining budgets, and at the last tick the spends.
    pub fn close_tick(&self, plan: &Plan, out: &mut Outcome, t: usize) {
        let programs = &plan.scenario.programs;
        for j in 0..programs.len() {
            if out.exhausted_tick[j].is_none() && self.exhausted(plan, j) {
                out.exhausted_tick[j] = Some(t);
            }
        }
        out.remaining.push(
            programs
                .iter()
                .zip(&self.program_spent)
                .map(|(p, &spent)| p.budget - spent)
                .collect(),
        );
        if t + 1 == plan.ticks {
            out.program_spend = self.program_spent.iter().map(|&x| u128::from(x)).collect();
            out.funder_spend = self.funder_spent.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::exact_fixture;

    #[test]
    fn a_program_never_pays_again_only_when_no_later_tick_can_pay() {
        // budget.toml: "small" is paced evenly over the whole run, so with its allowance of a
        // tick spent it still pays in the next ones; spent down to less than one discount, or
        // past its window's last tick, it never does.
        let scenario = exact_fixture("budget");
        let plan = Plan::new(&scenario);
        let (j, last) = (1, plan.ticks - 1);
        let mut ledger = Ledger::new(&plan);
        let n = ledger.affordable(&plan, j, 0);
        ledger.charge(&plan, j, n);
        assert!(!ledger.can_charge(&plan, j, 0));
        assert!(!ledger.never_pays_after(&plan, j, 0));
        assert!(ledger.never_pays_after(&plan, j, last));
        let left = ledger.affordable(&plan, j, last);
        ledger.charge(&plan, j, left);
        assert!(ledger.exhausted(&plan, j));
        assert!(ledger.never_pays_after(&plan, j, 0));
    }
}
