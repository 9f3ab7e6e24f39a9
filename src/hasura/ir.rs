//! What a request asks of a table, parsed and checked, before any SQL: filters
//! ([`BoolExp`]), orderings, list arguments and selections.

use super::meta::{Relation, Scalar};

/// A parsed `T_bool_exp`. Sibling keys are an `And`; `{}` is `True`.
#[derive(Clone, Debug)]
pub enum BoolExp {
    True,
    And(Vec<BoolExp>),
    Or(Vec<BoolExp>),
    Not(Box<BoolExp>),
    Compare {
        column: String,
        scalar: Scalar,
        op: CompareOp,
    },
    /// Some related row matches.
    Exists {
        relation: Relation,
        filter: Box<BoolExp>,
    },
}

impl BoolExp {
    pub fn and(parts: Vec<BoolExp>) -> BoolExp {
        let mut parts: Vec<BoolExp> = parts.into_iter().filter(|p| !matches!(p, BoolExp::True)).collect();
        match parts.len() {
            0 => BoolExp::True,
            1 => parts.pop().expect("one part"),
            _ => BoolExp::And(parts),
        }
    }

    pub fn eq(column: &str, scalar: Scalar, value: sea_orm::Value) -> BoolExp {
        BoolExp::Compare { column: column.into(), scalar, op: CompareOp::Eq(value) }
    }
}

/// One operator of a `<scalar>_comparison_exp`, with its operand converted to
/// the column's type. Null operands never get this far.
#[derive(Clone, Debug)]
pub enum CompareOp {
    Eq(sea_orm::Value),
    Neq(sea_orm::Value),
    Gt(sea_orm::Value),
    Gte(sea_orm::Value),
    Lt(sea_orm::Value),
    Lte(sea_orm::Value),
    In(Vec<sea_orm::Value>),
    Nin(Vec<sea_orm::Value>),
    IsNull(bool),
    Like { pattern: String, negated: bool, case_insensitive: bool },
    Contains(serde_json::Value),
    ContainedIn(serde_json::Value),
    HasKey(String),
    HasKeysAny(Vec<String>),
    HasKeysAll(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateFn {
    Sum,
    Avg,
    Max,
    Min,
}

impl AggregateFn {
    pub const ALL: [AggregateFn; 4] = [AggregateFn::Sum, AggregateFn::Avg, AggregateFn::Max, AggregateFn::Min];

    pub fn name(self) -> &'static str {
        match self {
            AggregateFn::Sum => "sum",
            AggregateFn::Avg => "avg",
            AggregateFn::Max => "max",
            AggregateFn::Min => "min",
        }
    }

    /// Whether a column of this scalar takes part in this function.
    pub fn applies_to(self, scalar: Scalar) -> bool {
        match self {
            AggregateFn::Sum | AggregateFn::Avg => scalar.is_numeric(),
            AggregateFn::Max | AggregateFn::Min => scalar.is_numeric() || matches!(scalar, Scalar::String | Scalar::Timestamptz),
        }
    }

    /// The scalar the result has: sums of integers are `bigint`, averages `Float`.
    pub fn result_scalar(self, scalar: Scalar) -> Scalar {
        match (self, scalar) {
            (AggregateFn::Avg, _) => Scalar::Float,
            (AggregateFn::Sum, Scalar::Int) => Scalar::Bigint,
            _ => scalar,
        }
    }
}

/// What an `order_by` entry sorts on.
#[derive(Clone, Debug)]
pub enum OrderTarget {
    Column(String),
    /// A column (or deeper) of an object relation.
    Object {
        relation: Relation,
        inner: Box<OrderTarget>,
    },
    /// An aggregate of an array relation: `count` or `fn(column)`.
    Aggregate {
        relation: Relation,
        function: Option<(AggregateFn, String)>,
    },
}

#[derive(Clone, Debug)]
pub struct OrderBy {
    pub target: OrderTarget,
    pub descending: bool,
    pub nulls_first: bool,
}

/// `where`, `order_by`, `distinct_on`, `limit`, `offset` of a list field.
#[derive(Clone, Debug, Default)]
pub struct ListArgs {
    pub filter: Option<BoolExp>,
    pub order_by: Vec<OrderBy>,
    pub distinct_on: Vec<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// One field selected on a row, under its response key (alias or name).
#[derive(Clone, Debug)]
pub enum FieldSel {
    /// `__typename`: the object type's name, written by the database too so
    /// its JSON is the complete response.
    Typename {
        key: String,
        name: String,
    },
    Column {
        key: String,
        column: String,
        scalar: Scalar,
    },
    Object {
        key: String,
        relation: Relation,
        fields: Vec<FieldSel>,
    },
    Array {
        key: String,
        relation: Relation,
        args: ListArgs,
        fields: Vec<FieldSel>,
    },
    Aggregate {
        key: String,
        relation: Relation,
        args: ListArgs,
        parts: Vec<AggregatePart>,
    },
}

/// A field of `T_aggregate`.
#[derive(Clone, Debug)]
pub enum AggregatePart {
    Typename { key: String, name: String },
    Aggregate { key: String, fields: Vec<AggregateField> },
    Nodes { key: String, fields: Vec<FieldSel> },
}

/// A field of `T_aggregate_fields`.
#[derive(Clone, Debug)]
pub enum AggregateField {
    Typename {
        key: String,
        name: String,
    },
    Count {
        key: String,
        columns: Vec<String>,
        distinct: bool,
    },
    /// `sum { a b }` etc.
    Function {
        key: String,
        function: AggregateFn,
        leaves: Vec<Leaf>,
    },
}

/// A field of `T_sum_fields` and its siblings.
#[derive(Clone, Debug)]
pub enum Leaf {
    Typename { key: String, name: String },
    Column { key: String, column: String, scalar: Scalar },
}

/// The response key of each selection kind, for merging repeated keys.
pub trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for FieldSel {
    fn key(&self) -> &str {
        match self {
            FieldSel::Typename { key, .. }
            | FieldSel::Column { key, .. }
            | FieldSel::Object { key, .. }
            | FieldSel::Array { key, .. }
            | FieldSel::Aggregate { key, .. } => key,
        }
    }
}

impl Keyed for AggregatePart {
    fn key(&self) -> &str {
        match self {
            AggregatePart::Typename { key, .. } | AggregatePart::Aggregate { key, .. } | AggregatePart::Nodes { key, .. } => key,
        }
    }
}

impl Keyed for AggregateField {
    fn key(&self) -> &str {
        match self {
            AggregateField::Typename { key, .. } | AggregateField::Count { key, .. } | AggregateField::Function { key, .. } => key,
        }
    }
}

impl Keyed for Leaf {
    fn key(&self) -> &str {
        match self {
            Leaf::Typename { key, .. } | Leaf::Column { key, .. } => key,
        }
    }
}

/// Adds a selection, merging it into an earlier one with the same response
/// key as GraphQL does (`{ a { x } a { y } }` is `{ a { x y } }`).
pub trait Merge: Keyed + Sized {
    fn merge(&mut self, other: Self);

    fn push_merged(list: &mut Vec<Self>, item: Self) {
        match list.iter_mut().find(|existing| existing.key() == item.key()) {
            Some(existing) => existing.merge(item),
            None => list.push(item),
        }
    }
}

fn merge_all<T: Merge>(into: &mut Vec<T>, from: Vec<T>) {
    for item in from {
        T::push_merged(into, item);
    }
}

impl Merge for FieldSel {
    fn merge(&mut self, other: Self) {
        match (self, other) {
            (FieldSel::Object { fields: a, .. }, FieldSel::Object { fields: b, .. })
            | (FieldSel::Array { fields: a, .. }, FieldSel::Array { fields: b, .. }) => merge_all(a, b),
            (FieldSel::Aggregate { parts: a, .. }, FieldSel::Aggregate { parts: b, .. }) => merge_all(a, b),
            _ => {}
        }
    }
}

impl Merge for AggregatePart {
    fn merge(&mut self, other: Self) {
        match (self, other) {
            (AggregatePart::Aggregate { fields: a, .. }, AggregatePart::Aggregate { fields: b, .. }) => merge_all(a, b),
            (AggregatePart::Nodes { fields: a, .. }, AggregatePart::Nodes { fields: b, .. }) => merge_all(a, b),
            _ => {}
        }
    }
}

impl Merge for AggregateField {
    fn merge(&mut self, other: Self) {
        if let (AggregateField::Function { leaves: a, .. }, AggregateField::Function { leaves: b, .. }) = (self, other) {
            merge_all(a, b);
        }
    }
}

impl Merge for Leaf {
    fn merge(&mut self, _: Self) {}
}

/// A field of `T_mutation_response`.
#[derive(Clone, Debug)]
pub enum MutationPart {
    AffectedRows { key: String },
    Returning { key: String, fields: Vec<FieldSel> },
}

/// `on_conflict`: the constraint's columns, what to update, and when.
#[derive(Clone, Debug)]
pub struct OnConflict {
    pub columns: Vec<String>,
    pub update_columns: Vec<String>,
    pub filter: Option<BoolExp>,
}
