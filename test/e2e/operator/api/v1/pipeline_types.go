package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StageTemplate describes one stage a Pipeline runs.
type StageTemplate struct {
	// Name names the stage; the Stage object is called <pipeline>-<name>.
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9-]*$`
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`
	// Image is the container image the stage runs.
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image"`
}

// PipelineSpec is the desired state of a Pipeline.
type PipelineSpec struct {
	// Stages run in order; each becomes a Stage object owned by the Pipeline.
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	Stages []StageTemplate `json:"stages,omitempty"`
	// Replicas is how many workers each stage runs; the scale subresource
	// reads and writes it.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}

// PipelineStatus is the observed state of a Pipeline.
type PipelineStatus struct {
	// ObservedGeneration is the generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase summarises the Pipeline: Pending or Ready.
	// +kubebuilder:validation:Enum=Pending;Ready
	// +optional
	Phase string `json:"phase,omitempty"`
	// Stages is how many Stage objects the Pipeline owns.
	// +optional
	Stages int32 `json:"stages,omitempty"`
	// Replicas mirrors spec.replicas once acted on, for the scale subresource.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// Selector selects the Pipeline's Stages, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// Repairs counts the Stages the operator restored after someone else
	// changed or deleted them.
	// +optional
	Repairs int32 `json:"repairs,omitempty"`
	// Conditions are the Pipeline's conditions; Ready is the one it sets.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Pipeline is a sequence of stages the operator keeps in place.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pl,categories=e2e-ops
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Stages",type=integer,JSONPath=`.status.stages`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Repairs",type=integer,JSONPath=`.status.repairs`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Pipeline struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PipelineSpec   `json:"spec,omitempty"`
	Status PipelineStatus `json:"status,omitempty"`
}

// PipelineList is a list of Pipelines.
// +kubebuilder:object:root=true
type PipelineList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pipeline `json:"items"`
}

// StageSpec is the desired state of a Stage.
type StageSpec struct {
	// Pipeline names the Pipeline the Stage belongs to.
	Pipeline string `json:"pipeline"`
	// Index is the Stage's position in its Pipeline, from 0.
	// +kubebuilder:validation:Minimum=0
	Index int32 `json:"index"`
	// Image is the container image the stage runs.
	Image string `json:"image"`
	// Replicas is how many workers the stage runs.
	Replicas int32 `json:"replicas"`
}

// Stage is one step of a Pipeline; the operator creates it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=e2e-ops
// +kubebuilder:printcolumn:name="Pipeline",type=string,JSONPath=`.spec.pipeline`
// +kubebuilder:printcolumn:name="Index",type=integer,JSONPath=`.spec.index`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
type Stage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec StageSpec `json:"spec,omitempty"`
}

// StageList is a list of Stages.
// +kubebuilder:object:root=true
type StageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Stage `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Pipeline{}, &PipelineList{}, &Stage{}, &StageList{})
}
