// Package admission is Vigil's Kubernetes validating admission webhook: it
// refuses pods whose images did not pass the gate.
//
// Handler reads an admission.k8s.io/v1 AdmissionReview, finds every
// container image of the admitted Pod or pod template (Images), asks a
// GateLookup for each image's stored decision (it never waits for a scan)
// and answers allowed or denied. Fail denies; unknown and pending deny too
// unless Config.FailOpen, because unknown never reads as pass.
//
// A ValidatingWebhookConfiguration for it looks like this:
//
//	webhooks:
//	  - name: gate.vigil.example.com
//	    admissionReviewVersions: [v1]
//	    sideEffects: None
//	    timeoutSeconds: 5
//	    failurePolicy: Fail
//	    clientConfig:
//	      url: https://vigil.example.com:8443/admission/v1/validate
//	      caBundle: <base64 PEM of Vigil's certificate>
//	    rules:
//	      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods, pods/ephemeralcontainers, replicationcontrollers]}
//	      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments, statefulsets, daemonsets, replicasets]}
//	      - {apiGroups: [batch], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [jobs, cronjobs]}
package admission
