//! Widget settings and what a visitor tells us about themselves after the
//! chat has started (the email left outside business hours).

use crate::keyring::{KeyRing, VISITOR_EMAIL, VISITOR_NAME};
use crate::rows::{self, WIDGET_COLUMNS};
use crate::{Result, Store, StoreError};
use palisade_model::{
    Email, TenantId, VisitorDetails, VisitorId, Widget, WidgetId, WidgetSettings, now_millis,
};
use sqlx::{AssertSqlSafe, Row};

impl Store {
    /// Replaces a widget's greeting and settings. `NotFound` if the widget
    /// is not this tenant's.
    pub async fn update_widget_settings(
        &self,
        tenant: &TenantId,
        widget: &WidgetId,
        greeting: &str,
        settings: &WidgetSettings,
    ) -> Result<Widget> {
        let json =
            serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE widgets SET greeting = $3, settings = $4, settings_updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(widget.as_str())
        .bind(greeting)
        .bind(json)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.widget(tenant, widget)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn widget(&self, tenant: &TenantId, widget: &WidgetId) -> Result<Option<Widget>> {
        let sql =
            format!("SELECT {WIDGET_COLUMNS} FROM widgets w WHERE w.tenant_id = $1 AND w.id = $2");
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(widget.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(rows::widget).transpose()
    }

    /// Sets the visitor's email, sealed with the data key version their
    /// other details use.
    pub async fn set_visitor_email(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        email: &Email,
    ) -> Result<()> {
        let mut tx = self.tenant_write_tx(tenant).await?;
        let row = sqlx::query("SELECT key_version FROM visitors WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(visitor.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let version = rows::opt_int(&row, "key_version")?
            .ok_or_else(|| StoreError::Corrupt(format!("visitor {visitor} has no key version")))?;
        let key = self
            .keys()
            .key(self.pool(), tenant.as_str(), version)
            .await?;
        let sealed = KeyRing::seal(
            &key,
            tenant.as_str(),
            VISITOR_EMAIL,
            visitor.as_str(),
            email.as_str(),
        )?;
        sqlx::query("UPDATE visitors SET email = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(visitor.as_str())
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn visitor_details(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
    ) -> Result<Option<VisitorDetails>> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query(
            "SELECT v.id, v.widget_id, w.name AS widget_name, v.name, v.email, v.key_version, \
             v.page_url, v.browser, v.created_at FROM visitors v \
             JOIN widgets w ON w.id = v.widget_id AND w.tenant_id = v.tenant_id \
             WHERE v.tenant_id = $1 AND v.id = $2",
        )
        .bind(tenant.as_str())
        .bind(visitor.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let version = rows::opt_int(&row, "key_version")?;
        let open = async |column, sealed: Option<String>| -> Result<Option<String>> {
            match sealed {
                Some(sealed) => {
                    let keys = self.keys();
                    let pool = self.pool();
                    let opened = keys
                        .open(
                            pool,
                            tenant.as_str(),
                            column,
                            visitor.as_str(),
                            version,
                            &sealed,
                        )
                        .await?;
                    Ok(Some(opened))
                }
                None => Ok(None),
            }
        };
        let name = open(VISITOR_NAME, rows::opt_text(&row, "name")?).await?;
        let email = open(VISITOR_EMAIL, rows::opt_text(&row, "email")?).await?;
        Ok(Some(VisitorDetails {
            id: VisitorId::from_raw(rows::text(&row, "id")?),
            widget_id: WidgetId::from_raw(rows::text(&row, "widget_id")?),
            widget_name: rows::text(&row, "widget_name")?,
            name,
            email,
            page_url: rows::opt_text(&row, "page_url")?,
            browser: rows::opt_text(&row, "browser")?,
            created_at: row.try_get::<i64, _>("created_at")?,
        }))
    }

    /// Records where a visitor is chatting from (the host page and the
    /// browser), as last seen; a `None` keeps what was there.
    pub async fn set_visitor_context(
        &self,
        tenant: &TenantId,
        visitor: &VisitorId,
        page_url: Option<&str>,
        browser: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "UPDATE visitors SET page_url = COALESCE($3, page_url), \
             browser = COALESCE($4, browser) WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(visitor.as_str())
        .bind(page_url.map(str::to_owned))
        .bind(browser.map(str::to_owned))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
