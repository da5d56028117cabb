package main

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/setpoint/setpoint/pkg/client"
)

// pipelineRunResource is the resource crd.yaml defines.
var pipelineRunResource = client.Resource{
	Group: "example.setpoint.dev", Version: "v1alpha1", Resource: "pipelineruns", Kind: "PipelineRun", Namespaced: true,
}

// PipelineRun is a list of steps that the workers run one after the other.
type PipelineRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              PipelineRunSpec   `json:"spec,omitempty"`
	Status            PipelineRunStatus `json:"status,omitempty"`
}

// PipelineRunSpec is what a PipelineRun asks for.
type PipelineRunSpec struct {
	Steps []Step `json:"steps"`
}

// Step is one unit of work. The example simulates it: the work is done once
// the worker holding the step has held it for Duration.
type Step struct {
	Name string `json:"name"`
	// Duration is a Go duration such as "3s".
	Duration string `json:"duration"`
}

// Phases of a PipelineRun and states of its steps.
const (
	PhasePending   = "Pending"
	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
)

// PipelineRunStatus is the progress the workers report.
type PipelineRunStatus struct {
	// ObservedGeneration is the generation of the spec the steps below
	// were built from.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is Pending, Running, Succeeded or Failed.
	Phase string `json:"phase,omitempty"`
	// CurrentStep names the step being worked on.
	CurrentStep string `json:"currentStep,omitempty"`
	// CompletedSteps counts the steps that succeeded.
	CompletedSteps int          `json:"completedSteps"`
	Steps          []StepStatus `json:"steps,omitempty"`
	// Conditions holds the Succeeded condition.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StepStatus is the state of one step, and its claim while it runs.
type StepStatus struct {
	Name string `json:"name"`
	// State is Pending, Running or Succeeded.
	State string `json:"state"`
	// Holder is the worker that claimed the step while it is Running.
	Holder string `json:"holder,omitempty"`
	// ClaimExpires is when the claim lapses unless the holder renews it;
	// after that any worker may take the step over and run it again.
	ClaimExpires *metav1.MicroTime `json:"claimExpires,omitempty"`
	// StartedAt is when the current attempt started.
	StartedAt *metav1.MicroTime `json:"startedAt,omitempty"`
	// FinishedAt is when the step succeeded.
	FinishedAt *metav1.MicroTime `json:"finishedAt,omitempty"`
	// Attempts counts the claims of the step: more than one means a worker
	// took it over from another whose claim lapsed.
	Attempts int `json:"attempts,omitempty"`
	// CompletedBy is the worker that finished the step.
	CompletedBy string `json:"completedBy,omitempty"`
}
