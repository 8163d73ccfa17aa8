//! `orgsec.v1.BindingService`: translation between prost bindings and [`crate::binding`], and
//! the handlers, each a call into [`crate::service::Bindings`].

use orgsec_proto::orgsec::v1 as pb;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::{Api, status};
use crate::binding::{Binding, BindingSpec, Mode, Scope, Violation};

/// The settings of a prost binding, and the problems that the translation itself finds (a
/// mode number outside the enum). Output-only fields are ignored.
fn spec_from_pb(b: Option<pb::Binding>) -> (BindingSpec, Vec<Violation>) {
    let b = b.unwrap_or_default();
    let mut violations = Vec::new();
    let mode = match pb::Mode::try_from(b.mode) {
        Ok(pb::Mode::Unspecified) => Mode::default(),
        Ok(pb::Mode::Auto) => Mode::Auto,
        Ok(pb::Mode::Approve) => Mode::Approve,
        Ok(pb::Mode::Notify) => Mode::Notify,
        Ok(pb::Mode::DryRun) => Mode::DryRun,
        Err(_) => {
            violations.push(Violation::new(
                "mode",
                format!("{} is not a mode: use MODE_AUTO, MODE_APPROVE, MODE_NOTIFY or MODE_DRY_RUN", b.mode),
            ));
            Mode::default()
        }
    };
    let scope = b.scope.unwrap_or_default();
    let spec = BindingSpec {
        name: b.name,
        controls: b.controls,
        finding_types: b.finding_types,
        playbook: b.playbook,
        mode,
        scope: Scope {
            accounts: scope.accounts,
            organizational_units: scope.organizational_units,
            tags: scope.tags.into_iter().collect(),
        },
        notify: b.notify,
        parameters: b.parameters.into_iter().collect(),
    };
    (spec, violations)
}

fn mode_to_pb(m: Mode) -> pb::Mode {
    match m {
        Mode::Auto => pb::Mode::Auto,
        Mode::Approve => pb::Mode::Approve,
        Mode::Notify => pb::Mode::Notify,
        Mode::DryRun => pb::Mode::DryRun,
    }
}

fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    // Nanoseconds within the second are below 10^9, so they fit an i32.
    prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: i32::try_from(t.nanosecond()).unwrap_or(0) }
}

fn to_pb(b: Binding) -> pb::Binding {
    let s = b.spec;
    pb::Binding {
        name: s.name,
        controls: s.controls,
        finding_types: s.finding_types,
        playbook: s.playbook,
        mode: mode_to_pb(s.mode) as i32,
        scope: Some(pb::Scope {
            accounts: s.scope.accounts,
            organizational_units: s.scope.organizational_units,
            tags: s.scope.tags.into_iter().collect(),
        }),
        notify: s.notify,
        parameters: s.parameters.into_iter().collect(),
        create_time: Some(timestamp(b.create_time)),
        update_time: Some(timestamp(b.update_time)),
        created_by: b.created_by,
        revision: b.revision,
    }
}

#[tonic::async_trait]
impl pb::binding_service_server::BindingService for Api {
    async fn create_binding(&self, r: Request<pb::CreateBindingRequest>) -> Result<Response<pb::Binding>, Status> {
        let who = self.caller(&r)?.clone();
        let (spec, extra) = spec_from_pb(r.into_inner().binding);
        let b = self.bindings.create(&who, spec, extra).await.map_err(status)?;
        tracing::info!(binding = %b.spec.name, by = %who.name, "binding created");
        Ok(Response::new(to_pb(b)))
    }

    async fn get_binding(&self, r: Request<pb::GetBindingRequest>) -> Result<Response<pb::Binding>, Status> {
        let who = self.caller(&r)?.clone();
        let b = self.bindings.get(&who, &r.into_inner().name).await.map_err(status)?;
        Ok(Response::new(to_pb(b)))
    }

    async fn update_binding(&self, r: Request<pb::UpdateBindingRequest>) -> Result<Response<pb::Binding>, Status> {
        let who = self.caller(&r)?.clone();
        let req = r.into_inner();
        let (spec, extra) = spec_from_pb(req.binding);
        let b = self.bindings.update(&who, spec, extra, req.allow_missing).await.map_err(status)?;
        tracing::info!(binding = %b.spec.name, by = %who.name, revision = b.revision, "binding updated");
        Ok(Response::new(to_pb(b)))
    }

    async fn delete_binding(
        &self,
        r: Request<pb::DeleteBindingRequest>,
    ) -> Result<Response<pb::DeleteBindingResponse>, Status> {
        let who = self.caller(&r)?.clone();
        let req = r.into_inner();
        self.bindings.delete(&who, &req.name, req.allow_missing).await.map_err(status)?;
        tracing::info!(binding = %req.name, by = %who.name, "binding deleted");
        Ok(Response::new(pb::DeleteBindingResponse {}))
    }

    async fn list_bindings(
        &self,
        r: Request<pb::ListBindingsRequest>,
    ) -> Result<Response<pb::ListBindingsResponse>, Status> {
        let who = self.caller(&r)?.clone();
        let req = r.into_inner();
        let size = u32::try_from(req.page_size)
            .map_err(|_| Status::invalid_argument(format!("page_size {} is negative", req.page_size)))?;
        let token = Some(req.page_token.as_str()).filter(|t| !t.is_empty());
        let page = self.bindings.list(&who, size, token).await.map_err(status)?;
        Ok(Response::new(pb::ListBindingsResponse {
            bindings: page.bindings.into_iter().map(to_pb).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn validate_binding(
        &self,
        r: Request<pb::ValidateBindingRequest>,
    ) -> Result<Response<pb::ValidateBindingResponse>, Status> {
        let who = self.caller(&r)?.clone();
        let (spec, extra) = spec_from_pb(r.into_inner().binding);
        let violations = self.bindings.validate(&who, &spec, extra).map_err(status)?;
        Ok(Response::new(pb::ValidateBindingResponse {
            violations: violations
                .into_iter()
                .map(|v| pb::Violation { field: v.field, description: v.description })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_mode_number_is_a_violation_and_unspecified_is_the_default() {
        let (spec, v) = spec_from_pb(Some(pb::Binding { mode: 9, ..Default::default() }));
        assert_eq!((spec.mode, v.len(), v[0].field.as_str()), (Mode::Approve, 1, "mode"));
        let (spec, v) = spec_from_pb(Some(pb::Binding::default()));
        assert_eq!((spec.mode, v.len()), (Mode::Approve, 0));
    }

    #[test]
    fn a_binding_round_trips() {
        let b = Binding {
            spec: BindingSpec {
                name: "n".into(),
                controls: vec!["EC2.13".into()],
                playbook: "revoke-public-ingress".into(),
                mode: Mode::DryRun,
                scope: Scope { accounts: vec!["333333333333".into()], ..Default::default() },
                parameters: [("ports".to_string(), "22".to_string())].into(),
                ..Default::default()
            },
            revision: 2,
            created_by: "x".into(),
            updated_by: "y".into(),
            create_time: OffsetDateTime::UNIX_EPOCH,
            update_time: OffsetDateTime::UNIX_EPOCH,
        };
        let p = to_pb(b.clone());
        assert_eq!((p.mode, p.revision), (pb::Mode::DryRun as i32, 2));
        assert_eq!(spec_from_pb(Some(p)), (b.spec, vec![]));
    }
}
