//! The columns and indexes every Zion table shares, so each migration states
//! only what is its own.
use sea_orm_migration::prelude::*;

/// `CREATE TABLE name (id bigint primary key, created_at, updated_at, ...)`.
pub fn table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .if_not_exists()
        .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key())
        .col(ColumnDef::new(Alias::new("created_at")).timestamp_with_time_zone().not_null())
        .col(ColumnDef::new(Alias::new("updated_at")).timestamp_with_time_zone().not_null())
        .to_owned()
}

pub fn col(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

/// A `<relation>_<table>` column pointing at `<table>.id`, deleted with it.
pub fn foreign_key(table: &'static str, column: &'static str, target: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("{table}_{column}_fkey"))
        .from(Alias::new(table), Alias::new(column))
        .to(Alias::new(target), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// A unique index named as PostgreSQL names a unique constraint.
pub fn unique(table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(format!("{table}_{}_key", columns.join("_"))).table(Alias::new(table)).unique().if_not_exists();
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}

/// A plain index, `<table>_<column>_idx`.
pub fn index(table: &'static str, column: &'static str) -> IndexCreateStatement {
    Index::create().name(format!("{table}_{column}_idx")).table(Alias::new(table)).col(Alias::new(column)).if_not_exists().to_owned()
}

pub async fn create_table(
    manager: &SchemaManager<'_>,
    table: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    manager.create_table(table).await?;
    for index in indexes {
        manager.create_index(index).await?;
    }
    Ok(())
}

pub async fn drop_table(manager: &SchemaManager<'_>, name: &'static str) -> Result<(), DbErr> {
    manager.drop_table(Table::drop().table(Alias::new(name)).to_owned()).await
}
