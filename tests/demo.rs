//! The client's scripted demo runs clean against a fresh server: every
//! outcome it checks (every RPC, every error case) is as expected.

mod common;

use common::*;

#[test]
fn the_demo_script_sees_every_expected_outcome() {
    let server = TestServer::start();
    let mismatches = chat_client::demo::run(server.new_api());
    assert_eq!(mismatches, 0);
}
