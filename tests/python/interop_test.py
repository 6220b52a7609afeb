"""The township services as a stock Python grpcio client sees them.

Run by tests/tests/e2e/python_interop.rs (the Rust suite), which starts a classifier and a registry with Hunan's
divisions on 127.0.0.1, both over TLS as deployed, and passes their URLs in TOWNSHIP_CLASSIFIER_URL and
TOWNSHIP_REGISTRY_URL, the CA to trust in TOWNSHIP_CA_CERT, the client certificate the classifier requires in
TOWNSHIP_CLIENT_CERT and TOWNSHIP_CLIENT_KEY, a file holding the token the registry requires in
TOWNSHIP_TOKEN_FILE, a township's resource name in TOWNSHIP_NAME and the proto directory in TOWNSHIP_PROTO_ROOT.
The stubs are generated from those protos with grpc_tools.protoc into a temporary directory, as a new user of
the contract would.
"""

import importlib
import importlib.resources
import os
import sys
import tempfile
import unittest

import grpc
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from grpc_status import rpc_status
from grpc_tools import protoc

ERROR_DOMAIN = "township.registry.gov"
CLASSIFIER = "township.classifier.v1.ClassifierService"
REGISTRY = "township.registry.v1.RegistryService"
COMMON = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
TIMEOUT = 60


def target(url):
    """grpc targets are host:port; the Rust side passes https:// URLs."""
    return url.split("://", 1)[-1]


def read(path):
    with open(path, "rb") as file:
        return file.read()


def generate_stubs(proto_root, out_dir):
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    protos = ["township/classifier/v1/classifier.proto", "township/registry/v1/registry.proto"]
    args = ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}", *protos]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {protos} under {proto_root}")
    sys.path.insert(0, out_dir)


def details(error):
    """The decoded google.rpc.Status details of a failed call: {type name: message}."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no grpc-status-details-bin on {error.code()} {error.details()!r}"
    found = {}
    for kind in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo):
        for detail in status.details:
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return found


class Interop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stubs_dir = tempfile.TemporaryDirectory(prefix="township-stubs-")
        generate_stubs(os.environ["TOWNSHIP_PROTO_ROOT"], cls.stubs_dir.name)
        cls.cpb = importlib.import_module("township.classifier.v1.classifier_pb2")
        cls.cgrpc = importlib.import_module("township.classifier.v1.classifier_pb2_grpc")
        cls.rpb = importlib.import_module("township.registry.v1.registry_pb2")
        cls.rgrpc = importlib.import_module("township.registry.v1.registry_pb2_grpc")
        # Default channel options: the stock client, with its 8 KiB metadata limit. The classifier takes a client
        # certificate of the CA; the registry a token, sent by grpc as `authorization: Bearer …` on every call.
        ca = read(os.environ["TOWNSHIP_CA_CERT"])
        certificate = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=read(os.environ["TOWNSHIP_CLIENT_KEY"]),
            certificate_chain=read(os.environ["TOWNSHIP_CLIENT_CERT"]))
        token = read(os.environ["TOWNSHIP_TOKEN_FILE"]).decode().strip()
        trust_only = grpc.ssl_channel_credentials(root_certificates=ca)
        with_token = grpc.composite_channel_credentials(trust_only, grpc.access_token_call_credentials(token))
        cls.classifier = grpc.secure_channel(target(os.environ["TOWNSHIP_CLASSIFIER_URL"]), certificate)
        cls.registry = grpc.secure_channel(target(os.environ["TOWNSHIP_REGISTRY_URL"]), with_token)
        cls.anonymous_registry = grpc.secure_channel(target(os.environ["TOWNSHIP_REGISTRY_URL"]), trust_only)
        cls.township = os.environ["TOWNSHIP_NAME"]

    @classmethod
    def tearDownClass(cls):
        cls.classifier.close()
        cls.registry.close()
        cls.anonymous_registry.close()
        cls.stubs_dir.cleanup()

    def refusal(self, call, request):
        with self.assertRaises(grpc.RpcError) as caught:
            call(request, timeout=TIMEOUT)
        return caught.exception

    def assert_error_info(self, found, reason="INVALID_ARGUMENT"):
        info = found["ErrorInfo"]
        self.assertEqual((info.reason, info.domain), (reason, ERROR_DOMAIN))
        return info

    def test_a_2000_township_cohort_with_a_bad_field_in_every_township_is_invalid_argument(self):
        cpb = self.cpb
        townships = [
            cpb.TownshipInput(id=f"4301{i:05d}", name=f"第{i}镇",
                              indicators=cpb.IndicatorValues(population=2.5, fiscal_revenue=1800, land_area=110))
            for i in range(2000)
        ]  # every one without kind
        error = self.refusal(self.cgrpc.ClassifierServiceStub(self.classifier).Classify,
                             cpb.ClassifyRequest(townships=townships))

        self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT, error.details())
        self.assertIn("townships[0].kind", error.details())
        self.assertIn("1997 more", error.details())
        found = details(error)
        violations = found["BadRequest"].field_violations
        self.assertEqual(violations[0].field, "townships[0].kind")
        self.assertIn("430100000", violations[0].description)
        listed, summary = violations[:-1], violations[-1]
        self.assertGreaterEqual(len(listed), 10)
        self.assertEqual([v.field for v in listed], [f"townships[{i}].kind" for i in range(len(listed))])
        self.assertEqual(summary.field, "townships")
        self.assertIn(f"{2000 - len(listed)} more violations not listed (2000 in all)", summary.description)
        self.assertEqual(self.assert_error_info(found).metadata["violation_count"], "2000")

    def test_a_10000_request_bad_batch_is_invalid_argument_naming_the_request(self):
        rpb = self.rpb
        requests = [
            rpb.CreateInstitutionRequest(
                parent=self.township,
                institution=rpb.Institution(display_name=f"机构{i}", staffing_quota=5,
                                             approving_document="长编办发〔2024〕1号"))  # no kind
            for i in range(10_000)
        ]
        error = self.refusal(self.rgrpc.RegistryServiceStub(self.registry).BatchCreateInstitutions,
                             rpb.BatchCreateInstitutionsRequest(requests=requests))

        self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT, error.details())
        self.assertIn("requests[0].institution.kind", error.details())
        found = details(error)
        self.assertEqual([v.field for v in found["BadRequest"].field_violations], ["requests[0].institution.kind"])
        self.assert_error_info(found)

    def test_a_10_kb_resource_name_is_invalid_argument_quoting_at_most_100_characters(self):
        name = "cities/" + "镇" * 10_000
        error = self.refusal(self.rgrpc.RegistryServiceStub(self.registry).GetTownship,
                             self.rpb.GetTownshipRequest(name=name))

        self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT, error.details())
        violation = details(error)["BadRequest"].field_violations[0]
        self.assertEqual(violation.field, "name")
        quoted = violation.description.split('"')[1]
        self.assertLessEqual(len(quoted), 101)
        self.assertTrue(quoted.endswith("…"), quoted)

    def test_a_create_retried_with_its_request_id_makes_one_record(self):
        rpb = self.rpb
        registry = self.rgrpc.RegistryServiceStub(self.registry)
        request = rpb.CreateLeadershipPostRequest(
            parent=self.township, post=rpb.LeadershipPost(role="组织委员"), request_id="py-6f1d2c4a-retry")
        first = registry.CreateLeadershipPost(request, timeout=TIMEOUT)
        again = registry.CreateLeadershipPost(request, timeout=TIMEOUT)  # as after a lost reply

        self.assertEqual(again, first)
        posts = registry.ListLeadershipPosts(rpb.ListLeadershipPostsRequest(parent=self.township), timeout=TIMEOUT)
        self.assertEqual([p.name for p in posts.posts if p.role == "组织委员"], [first.name])
        changed = rpb.CreateLeadershipPostRequest(
            parent=self.township, post=rpb.LeadershipPost(role="宣传委员"), request_id="py-6f1d2c4a-retry")
        error = self.refusal(registry.CreateLeadershipPost, changed)
        self.assertEqual(error.code(), grpc.StatusCode.ALREADY_EXISTS, error.details())
        self.assertIn("request_id", error.details())

    def test_v1alpha_reflection_lists_exactly_the_served_services_on_each_port(self):
        for channel, service in ((self.classifier, CLASSIFIER), (self.registry, REGISTRY)):
            with self.subTest(service=service):
                database = ProtoReflectionDescriptorDatabase(channel)
                self.assertEqual(set(database.get_services()), {service} | COMMON)
                # The service's file and its imports can be fetched and resolved.
                from google.protobuf.descriptor_pool import DescriptorPool
                described = DescriptorPool(database).FindServiceByName(service)
                self.assertGreater(len(described.methods), 0)

    def test_undecodable_bytes_are_invalid_argument(self):
        calls = (
            (self.classifier, f"/{CLASSIFIER}/Classify", "township.classifier.v1.ClassifyRequest"),
            (self.registry, f"/{REGISTRY}/GetTownship", "township.registry.v1.GetTownshipRequest"),
        )
        for channel, method, message_type in calls:
            with self.subTest(method=method):
                raw = channel.unary_unary(method)  # no serializers: bytes as they are
                error = self.refusal(raw, b"\xff\xff\xff")
                self.assertEqual(error.code(), grpc.StatusCode.INVALID_ARGUMENT, error.details())
                self.assertIn(message_type, error.details())
                self.assertEqual(self.assert_error_info(details(error)).metadata["message_type"], message_type)

    def test_a_registry_call_without_a_token_is_unauthenticated(self):
        rpb = self.rpb
        anonymous = self.rgrpc.RegistryServiceStub(self.anonymous_registry)
        error = self.refusal(anonymous.ListCities, rpb.ListCitiesRequest())
        self.assertEqual(error.code(), grpc.StatusCode.UNAUTHENTICATED, error.details())
        self.assertIn("no credentials", error.details())
        # The same call with the token is answered.
        cities = self.rgrpc.RegistryServiceStub(self.registry).ListCities(rpb.ListCitiesRequest(), timeout=TIMEOUT)
        self.assertIn(self.township.split("/counties/")[0], [city.name for city in cities.cities])

    def test_the_classifier_answers_a_client_certificate_of_its_ca(self):
        answer = self.cgrpc.ClassifierServiceStub(self.classifier).GetDefaultPolicy(
            self.cpb.GetDefaultPolicyRequest(), timeout=TIMEOUT)
        self.assertTrue(answer.policy_fingerprint)


if __name__ == "__main__":
    unittest.main()
