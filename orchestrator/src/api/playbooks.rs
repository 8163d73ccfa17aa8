//! `orgsec.v1.PlaybookService`: the catalogue, as prost types.

use orgsec_proto::orgsec::v1 as pb;
use tonic::{Request, Response, Status};

use super::Api;
use crate::playbooks::{CATALOGUE, Playbook};

fn to_pb(p: &Playbook) -> pb::Playbook {
    let strings = |xs: &[&str]| xs.iter().map(|x| (*x).to_string()).collect();
    pb::Playbook {
        name: p.name.into(),
        description: p.description.into(),
        controls: strings(p.controls),
        finding_types: strings(p.finding_types),
        parameters: p
            .parameters
            .iter()
            .map(|x| pb::Parameter {
                name: x.name.into(),
                description: x.description.into(),
                required: x.required,
                default_value: x.default.into(),
            })
            .collect(),
        permissions: strings(p.permissions),
    }
}

#[tonic::async_trait]
impl pb::playbook_service_server::PlaybookService for Api {
    async fn list_playbooks(
        &self,
        r: Request<pb::ListPlaybooksRequest>,
    ) -> Result<Response<pb::ListPlaybooksResponse>, Status> {
        self.caller(&r)?;
        Ok(Response::new(pb::ListPlaybooksResponse { playbooks: CATALOGUE.iter().map(to_pb).collect() }))
    }
}
