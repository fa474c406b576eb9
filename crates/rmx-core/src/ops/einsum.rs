//! `einsum` and `einsum_path`, as MLX 0.32.4 (`mlx/einsum.cpp`): the same parsing (spaces
//! dropped, implicit output = letters seen once, sorted, after any ellipsis), the same
//! checks and messages, the same greedy contraction order (numpy's greedy algorithm, except
//! that after the first step only pairs with the newest intermediate are rescanned, MLX's
//! variant) and the same per-step strategy: collapse repeated subscripts (diagonals), sum
//! subscripts used by one operand only, then either a batched matmul (when the pair
//! contracts something) or broadcast-multiply-and-sum. Everything is built from ordinary
//! ops, so vjp/jvp/vmap come from theirs. As in MLX, a contraction through matmul rejects
//! integer operands while elementwise-only steps accept every dtype.

use crate::array::Array;
use crate::error::Result;
use crate::shape::{shape_str, Shape};

use super::elementwise::multiply;
use super::linalg::matmul;
use super::reduce::sum;
use super::shape::{broadcast_to, diagonal, reshape_exact, transpose};

/// A set of subscript letters: bit `letter_bit(c)`.
type Set = u64;

fn letter_bit(c: u8) -> Set {
    match c {
        b'a'..=b'z' => 1 << (c - b'a'),
        _ => 1 << (26 + c - b'A'),
    }
}

fn set_of(s: &[u8]) -> Set {
    s.iter().fold(0, |m, &c| m | letter_bit(c))
}

/// Sizes of the letters (index by `letter_index`), after broadcasting across operands.
struct Dims([usize; 52]);

impl Dims {
    /// The product of the sizes in `set` (wrapping, as MLX's `size_t`).
    fn size(&self, set: Set) -> u64 {
        (0..52)
            .filter(|i| set & (1 << i) != 0)
            .fold(1u64, |p, i| p.wrapping_mul(self.0[i] as u64))
    }
    /// The product of the sizes of a subscript string, repeats counted twice.
    fn term_size(&self, s: &[u8]) -> u64 {
        s.iter()
            .fold(1u64, |p, &c| p.wrapping_mul(self.0[letter_index(c)] as u64))
    }
}

fn letter_index(c: u8) -> usize {
    letter_bit(c).trailing_zeros() as usize
}

/// numpy's `_flop_count`: the contraction size times the operand count (plus one for a sum).
fn flop_count(contract: Set, inner: bool, num_terms: usize, dims: &Dims) -> u64 {
    let factor = (num_terms.saturating_sub(1)).max(1) + inner as usize;
    dims.size(contract).wrapping_mul(factor as u64)
}

/// Contracting `positions` of `sets`: (result, remaining sets + result, removed, contracted).
fn find_contraction(positions: &[usize], sets: &[Set], output: Set) -> (Set, Vec<Set>, Set, Set) {
    let mut contract = 0;
    let mut remain = output;
    let mut remaining = Vec::with_capacity(sets.len());
    for (i, &s) in sets.iter().enumerate() {
        if positions.contains(&i) {
            contract |= s;
        } else {
            remaining.push(s);
            remain |= s;
        }
    }
    let result = remain & contract;
    remaining.push(result);
    (result, remaining, contract & !result, contract)
}

/// A candidate pair: sort key (-removed size, flop cost), positions, the sets after it.
type Candidate = ((i128, u64), (usize, usize), Vec<Set>);

fn possible_contraction(
    pos: (usize, usize),
    sets: &[Set],
    output: Set,
    dims: &Dims,
    memory_limit: u64,
    path_cost: u64,
    naive_cost: u64,
) -> Option<Candidate> {
    let (result, new_sets, removed, contract) = find_contraction(&[pos.0, pos.1], sets, output);
    let new_size = dims.size(result);
    if new_size > memory_limit {
        return None;
    }
    let old = dims.size(sets[pos.0]) as i128 + dims.size(sets[pos.1]) as i128;
    let removed_size = old - new_size as i128;
    let cost = flop_count(contract, removed != 0, 2, dims);
    if path_cost.wrapping_add(cost) > naive_cost {
        return None;
    }
    Some(((-removed_size, cost), pos, new_sets))
}

/// numpy's `_update_other_results`: keep the candidates that do not involve the pair just
/// contracted, renumbered for the new list of sets.
fn update_other_results(results: Vec<Candidate>, best: &Candidate) -> Vec<Candidate> {
    let (bx, by) = best.1;
    let new_set = *best.2.last().unwrap();
    let mut out = Vec::new();
    for (cost, (x, y), mut sets) in results {
        if x == bx || x == by || y == bx || y == by {
            continue;
        }
        sets.remove(by - (by > x) as usize - (by > y) as usize);
        sets.remove(bx - (bx > x) as usize - (bx > y) as usize);
        let at = sets.len() - 1;
        sets.insert(at, new_set);
        let mx = x - (x > bx) as usize - (x > by) as usize;
        let my = y - (y > bx) as usize - (y > by) as usize;
        out.push((cost, (mx, my), sets));
    }
    out
}

/// The greedy path: contract the best pair (largest size removed, then fewest flops) until
/// one operand is left; pairs sharing no letter (outer products) only when nothing else is
/// left. After the first step only pairs with the new intermediate are scanned.
fn greedy_path(mut sets: Vec<Set>, output: Set, dims: &Dims, memory_limit: u64) -> Vec<Vec<usize>> {
    let n = sets.len();
    if n == 1 {
        return vec![vec![0]];
    }
    if n == 2 {
        return vec![vec![0, 1]];
    }
    let all: Vec<usize> = (0..n).collect();
    let (_, _, removed, contract) = find_contraction(&all, &sets, output);
    let naive_cost = flop_count(contract, removed != 0, n, dims);
    let mut cands: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect();
    let mut known: Vec<Candidate> = Vec::new();
    let mut path = Vec::new();
    let mut path_cost = 0u64;
    for _ in 0..n - 1 {
        let scan = |known: &mut Vec<Candidate>, sets: &[Set], outer: bool| {
            for &pos in &cands {
                if !outer && sets[pos.0] & sets[pos.1] == 0 {
                    continue;
                }
                if let Some(c) = possible_contraction(
                    pos,
                    sets,
                    output,
                    dims,
                    memory_limit,
                    path_cost,
                    naive_cost,
                ) {
                    known.push(c);
                }
            }
        };
        scan(&mut known, &sets, false);
        if known.is_empty() {
            scan(&mut known, &sets, true);
            if known.is_empty() {
                path.push((0..sets.len()).collect());
                break;
            }
        }
        // the first minimum, as Python's `min`
        let mut bi = 0;
        for (i, c) in known.iter().enumerate() {
            if c.0 < known[bi].0 {
                bi = i;
            }
        }
        let best = known[bi].clone();
        known = update_other_results(known, &best);
        sets = best.2.clone();
        let last = sets.len() - 1;
        cands = (0..last).map(|i| (i, last)).collect();
        path.push(vec![best.1 .0, best.1 .1]);
        path_cost = path_cost.wrapping_add(best.0 .1);
    }
    path
}

/// A checked einsum: expanded subscripts (letters only), letter sizes and the path.
struct Plan {
    inputs: Vec<Vec<u8>>,
    output: Vec<u8>,
    dims: Dims,
    path: Vec<Vec<usize>>,
}

/// MLX's parse: drop spaces, split at the first "->"; without one the output is "..." (if
/// any ellipsis) then the characters used once, sorted.
fn parse(subscripts: &str) -> (Vec<String>, String) {
    let s: String = subscripts.chars().filter(|&c| c != ' ').collect();
    let (lhs, rhs) = match s.find("->") {
        Some(p) => (s[..p].to_string(), s[p + 2..].to_string()),
        None => {
            let mut rhs = String::new();
            let mut counts: Vec<(char, usize)> = Vec::new();
            for c in s.chars() {
                if c == ',' {
                    continue;
                }
                if c == '.' && rhs.is_empty() {
                    rhs.push_str("...");
                    continue;
                }
                match counts.iter_mut().find(|(x, _)| *x == c) {
                    Some(e) => e.1 += 1,
                    None => counts.push((c, 1)),
                }
            }
            let mut once: Vec<char> = counts
                .into_iter()
                .filter(|&(_, n)| n == 1)
                .map(|(c, _)| c)
                .collect();
            rhs.extend(once.drain(..));
            let mut chars: Vec<char> = rhs.chars().collect();
            chars.sort_unstable();
            (s.clone(), chars.into_iter().collect())
        }
    };
    // empty pieces count: "" is one scalar operand, "," two
    (lhs.split(',').map(str::to_string).collect(), rhs)
}

/// Checks a subscript's characters and replaces its ellipsis by `ellipsis` letters (the
/// operand's extra dimensions, or the longest ellipsis for the output).
fn expand_ellipsis(
    op: &str,
    sub: &str,
    operand: Option<(usize, &Array)>,
    remaining: &[u8],
    max_ellipsis: &mut usize,
) -> Result<Vec<u8>> {
    let chars: Vec<char> = sub.chars().collect();
    let mut at = None;
    let (mut before, mut after) = (0usize, 0usize);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_ascii_alphabetic() {
            if i + 2 >= chars.len() || c != '.' || chars[i + 1] != '.' || chars[i + 2] != '.' {
                return Err(crate::value_err!(
                    "[{op}] Subscripts must be letters, but got '{c}'."
                ));
            }
            if at.is_some() {
                return Err(crate::value_err!(
                    "[{op}] Only one ellipsis per subscript is allowed but found more in '{sub}'."
                ));
            }
            at = Some(before);
            i += 3;
            continue;
        }
        if at.is_some() {
            after += 1;
        } else {
            before += 1;
        }
        i += 1;
    }
    let letters: Vec<u8> = chars
        .iter()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|&c| c as u8)
        .collect();
    let Some(at) = at else {
        return Ok(letters);
    };
    let len = match operand {
        Some((idx, a)) => {
            let need = before + after;
            if a.ndim() < need {
                return Err(crate::value_err!(
                    "[{op}] Operand {idx} with shape {} has insufficient dimensions for subscript '{sub}'. The ellipsis requires at least {need} dimensions but the operand has {} dimensions.",
                    shape_str(a.shape()),
                    a.ndim()
                ));
            }
            let len = a.ndim() - need;
            *max_ellipsis = (*max_ellipsis).max(len);
            len
        }
        None => *max_ellipsis,
    };
    if len > remaining.len() {
        // MLX reads before its buffer here; refuse clearly instead
        return Err(crate::value_err!(
            "[{op}] The ellipsis in '{sub}' stands for {len} dimensions but only {} unused letters are left to name them.",
            remaining.len()
        ));
    }
    let mut out = letters[..at].to_vec();
    out.extend_from_slice(&remaining[remaining.len() - len..]);
    out.extend_from_slice(&letters[at..]);
    Ok(out)
}

fn plan(op: &str, subscripts: &str, operands: &[Array]) -> Result<Plan> {
    if operands.is_empty() {
        return Err(crate::value_err!(
            "[{op}] At least one operand is required."
        ));
    }
    let (ins, out) = parse(subscripts);
    if operands.len() != ins.len() {
        return Err(crate::value_err!(
            "[{op}] Number of operands, {}, does not match number of input subscripts, {}",
            operands.len(),
            ins.len()
        ));
    }
    let used: Vec<char> = subscripts.chars().collect();
    let remaining: Vec<u8> = (b'a'..=b'z')
        .chain(b'A'..=b'Z')
        .filter(|&c| !used.contains(&(c as char)))
        .collect();
    let mut max_ellipsis = 0;
    let mut inputs = Vec::with_capacity(ins.len());
    for (i, (s, a)) in ins.iter().zip(operands).enumerate() {
        inputs.push(expand_ellipsis(
            op,
            s,
            Some((i, a)),
            &remaining,
            &mut max_ellipsis,
        )?);
    }
    let output = expand_ellipsis(op, &out, None, &remaining, &mut max_ellipsis)?;
    if set_of(&output).count_ones() as usize != output.len() {
        return Err(crate::value_err!(
            "[{op}] Repeat indices not allowed in output."
        ));
    }
    for (i, (s, a)) in inputs.iter().zip(operands).enumerate() {
        if s.len() != a.ndim() {
            return Err(crate::value_err!(
                "[{op}] Invalid number of subscripts {} for input {i} with {} dimensions.",
                s.len(),
                a.ndim()
            ));
        }
        let mut local = [usize::MAX; 52];
        for (j, &c) in s.iter().enumerate() {
            let d = a.shape()[j];
            let slot = &mut local[letter_index(c)];
            if *slot == usize::MAX {
                *slot = d;
            } else if *slot != d {
                return Err(crate::value_err!(
                    "[{op}] Dimensions of repeated subscripts do not have the same size ({} != {d}).",
                    *slot
                ));
            }
        }
    }
    let mut dims = [usize::MAX; 52];
    for (i, (s, a)) in inputs.iter().zip(operands).enumerate() {
        for (j, &c) in s.iter().enumerate() {
            let d = a.shape()[j];
            let slot = &mut dims[letter_index(c)];
            if *slot == usize::MAX {
                *slot = d;
            } else {
                if d != 1 && *slot != 1 && *slot != d {
                    return Err(crate::value_err!(
                        "[{op}] Cannot broadcast dimension {j} of input {i} with shape {} to size {}.",
                        shape_str(a.shape()),
                        *slot
                    ));
                }
                *slot = (*slot).max(d);
            }
        }
    }
    // letters only in the output have no size: count them as 1 (MLX fails later for them)
    for d in dims.iter_mut() {
        if *d == usize::MAX {
            *d = 1;
        }
    }
    let dims = Dims(dims);
    let max_size = inputs
        .iter()
        .map(|s| dims.term_size(s))
        .fold(dims.term_size(&output), u64::max);
    let path = if inputs.len() <= 2 {
        vec![(0..inputs.len()).collect()]
    } else {
        let sets = inputs.iter().map(|s| set_of(s)).collect();
        greedy_path(sets, set_of(&output), &dims, max_size)
    };
    Ok(Plan {
        inputs,
        output,
        dims,
        path,
    })
}

/// `einsum_path`: the contraction order (positions into the shrinking operand list, the
/// new intermediate appended last) and MLX's summary text.
pub fn einsum_path(subscripts: &str, operands: &[Array]) -> Result<(Vec<Vec<usize>>, String)> {
    let p = plan("einsum_path", subscripts, operands)?;
    let mut sets: Vec<Set> = p.inputs.iter().map(|s| set_of(s)).collect();
    let output = set_of(&p.output);
    let all = sets.iter().fold(0, |m, s| m | s);
    let naive_scaling = all.count_ones();
    let naive_cost = flop_count(all, all & !output != 0, sets.len(), &p.dims);
    let (mut opt_cost, mut opt_scaling) = (0u64, 0u32);
    for positions in &p.path {
        let (_, rest, removed, contract) = find_contraction(positions, &sets, output);
        sets = rest;
        opt_cost =
            opt_cost.wrapping_add(flop_count(contract, removed != 0, positions.len(), &p.dims));
        opt_scaling = opt_scaling.max(contract.count_ones());
    }
    let info = format!(
        "  Complete contraction:  {subscripts}\n         Naive scaling:  {naive_scaling}\n     Optimized scaling:  {opt_scaling}\n      Naive FLOP count:  {naive_cost}\n  Optimized FLOP count:  {opt_cost}\n"
    );
    Ok((p.path, info))
}

/// Transposes `x` (letters `have`) to the letter order `want`; a letter of `want` missing
/// from `have` gets MLX's error (its final transpose receives too many axes).
fn transpose_to(x: &Array, have: &[u8], want: &[u8]) -> Result<Array> {
    if want.len() != have.len() || want.iter().any(|c| !have.contains(c)) {
        return Err(crate::value_err!(
            "[transpose] Received {} axes for array with {} dimensions.",
            want.len(),
            have.len()
        ));
    }
    if want == have {
        return Ok(x.clone());
    }
    let perm: Vec<i64> = want
        .iter()
        .map(|c| have.iter().position(|h| h == c).unwrap() as i64)
        .collect();
    transpose(x, Some(&perm))
}

/// Takes the diagonal of every repeated letter (`ii` -> `i`); the diagonal axis goes last.
fn collapse_repeats(mut x: Array, sub: &mut Vec<u8>) -> Result<Array> {
    while let Some(p1) = (0..sub.len()).find(|&i| sub[i + 1..].contains(&sub[i])) {
        let c = sub[p1];
        let p2 = p1 + 1 + sub[p1 + 1..].iter().position(|&d| d == c).unwrap();
        x = diagonal(&x, 0, p1 as i64, p2 as i64)?;
        sub.remove(p2);
        sub.remove(p1);
        sub.push(c);
    }
    Ok(x)
}

/// MLX's `preprocess_einsum_inputs`: diagonals, then sums over the letters that appear in
/// one operand of this step and nowhere else (neither its other operands nor its output).
fn preprocess(subs: &mut [Vec<u8>], xs: &mut [Array], output: &[u8]) -> Result<()> {
    for (s, x) in subs.iter_mut().zip(xs.iter_mut()) {
        if set_of(s).count_ones() as usize != s.len() {
            *x = collapse_repeats(x.clone(), s)?;
        }
    }
    let mut counts = [0usize; 52];
    for s in subs.iter().map(|s| set_of(s)).chain([set_of(output)]) {
        for (i, n) in counts.iter_mut().enumerate() {
            *n += (s >> i & 1) as usize;
        }
    }
    for (s, x) in subs.iter_mut().zip(xs.iter_mut()) {
        let axes: Vec<i64> = (0..s.len())
            .filter(|&j| counts[letter_index(s[j])] == 1)
            .map(|j| j as i64)
            .collect();
        if !axes.is_empty() {
            *x = sum(x, Some(&axes), false)?;
            for &j in axes.iter().rev() {
                s.remove(j as usize);
            }
        }
    }
    Ok(())
}

/// A pair that contracts letters: batch letters (in both and the output) first, then
/// `a`'s and `b`'s own letters, multiplied as one batched matmul.
fn dot(a: &Array, sa: &[u8], b: &Array, sb: &[u8], output: &[u8]) -> Result<Array> {
    let (set_a, set_b, set_o) = (set_of(sa), set_of(sb), set_of(output));
    let mut a_contract = Vec::new();
    let mut a_batch = Vec::new();
    let mut a_concat = Vec::new();
    for (i, &c) in sa.iter().enumerate() {
        let bit = letter_bit(c);
        if set_o & bit == 0 {
            a_contract.push(i);
        } else if set_b & bit != 0 {
            a_batch.push(i);
        } else {
            a_concat.push(i);
        }
    }
    let find_b = |i: &usize| sb.iter().position(|&c| c == sa[*i]).unwrap();
    let b_contract: Vec<usize> = a_contract.iter().map(find_b).collect();
    let b_batch: Vec<usize> = a_batch.iter().map(find_b).collect();
    let b_concat: Vec<usize> = (0..sb.len())
        .filter(|&i| set_o & letter_bit(sb[i]) != 0 && set_a & letter_bit(sb[i]) == 0)
        .collect();
    // broadcast the contracted axes against each other
    let mut shape_a: Shape = a.shape().into();
    let mut shape_b: Shape = b.shape().into();
    for (&i, &j) in a_contract.iter().zip(&b_contract) {
        let d = shape_a[i].max(shape_b[j]);
        shape_a[i] = d;
        shape_b[j] = d;
    }
    let a = broadcast_to(a, &shape_a)?;
    let b = broadcast_to(b, &shape_b)?;
    let fold = |x: &Array, i: &[usize], j: &[usize], k: &[usize]| -> Result<Array> {
        let perm: Vec<i64> = i.iter().chain(j).chain(k).map(|&d| d as i64).collect();
        let mut shape: Shape = i.iter().map(|&d| x.shape()[d]).collect();
        shape.push(j.iter().map(|&d| x.shape()[d]).product());
        shape.push(k.iter().map(|&d| x.shape()[d]).product());
        reshape_exact(&transpose(x, Some(&perm))?, shape)
    };
    let am = fold(&a, &a_batch, &a_concat, &a_contract)?;
    let bm = fold(&b, &b_batch, &b_contract, &b_concat)?;
    let r = matmul(&am, &bm)?;
    let mut shape: Shape = a_batch
        .iter()
        .zip(&b_batch)
        .map(|(&i, &j)| a.shape()[i].max(b.shape()[j]))
        .collect();
    shape.extend(a_concat.iter().map(|&i| a.shape()[i]));
    shape.extend(b_concat.iter().map(|&i| b.shape()[i]));
    let r = reshape_exact(&r, shape)?;
    let have: Vec<u8> = a_batch
        .iter()
        .chain(&a_concat)
        .map(|&i| sa[i])
        .chain(b_concat.iter().map(|&i| sb[i]))
        .collect();
    transpose_to(&r, &have, output)
}

/// Any number of operands: align every operand on the letters in order of first
/// appearance, multiply (broadcasting), sum the letters not in the output.
fn naive(subs: &[Vec<u8>], xs: &[Array], output: &[u8]) -> Result<Array> {
    let mut order: Vec<u8> = Vec::new();
    for s in subs {
        for &c in s {
            if !order.contains(&c) {
                order.push(c);
            }
        }
    }
    let mut out: Option<Array> = None;
    for (s, x) in subs.iter().zip(xs) {
        let mine: Vec<u8> = order.iter().copied().filter(|c| s.contains(c)).collect();
        let t = transpose_to(x, s, &mine)?;
        let shape: Shape = order
            .iter()
            .map(|c| match mine.iter().position(|m| m == c) {
                Some(p) => t.shape()[p],
                None => 1,
            })
            .collect();
        let t = reshape_exact(&t, shape)?;
        out = Some(match out {
            None => t,
            Some(o) => multiply(&o, &t)?,
        });
    }
    let mut out = out.expect("einsum step without operands");
    let set_o = set_of(output);
    let sum_axes: Vec<i64> = (0..order.len())
        .filter(|&i| set_o & letter_bit(order[i]) == 0)
        .map(|i| i as i64)
        .collect();
    if !sum_axes.is_empty() {
        out = sum(&out, Some(&sum_axes), false)?;
    }
    let have: Vec<u8> = order
        .into_iter()
        .filter(|&c| set_o & letter_bit(c) != 0)
        .collect();
    transpose_to(&out, &have, output)
}

/// Evaluates the Einstein summation `subscripts` over `operands` along MLX's greedy path.
pub fn einsum(subscripts: &str, operands: &[Array]) -> Result<Array> {
    let p = plan("einsum", subscripts, operands)?;
    let output_set = set_of(&p.output);
    let mut subs = p.inputs.clone();
    let mut xs: Vec<Array> = operands.to_vec();
    for (step, positions) in p.path.iter().enumerate() {
        let mut s: Vec<Vec<u8>> = positions.iter().map(|&i| subs[i].clone()).collect();
        let mut x: Vec<Array> = positions.iter().map(|&i| xs[i].clone()).collect();
        let out: Vec<u8> = if step + 1 == p.path.len() {
            p.output.clone()
        } else {
            // the letters still needed later, in order of appearance
            let mut later = output_set;
            for (i, t) in subs.iter().enumerate() {
                if !positions.contains(&i) {
                    later |= set_of(t);
                }
            }
            let mut o = Vec::new();
            for &c in s.iter().flatten() {
                if later & letter_bit(c) != 0 && !o.contains(&c) {
                    o.push(c);
                }
            }
            o
        };
        preprocess(&mut s, &mut x, &out)?;
        let can_dot = s.len() == 2 && s[0].iter().any(|&c| set_of(&out) & letter_bit(c) == 0);
        let r = if can_dot {
            dot(&x[0], &s[0], &x[1], &s[1], &out)?
        } else {
            naive(&s, &x, &out)?
        };
        for &i in positions.iter().rev() {
            subs.remove(i);
            xs.remove(i);
        }
        subs.push(out);
        xs.push(r);
    }
    Ok(xs.pop().expect("einsum path left no operand"))
}
