package k8s

// Placeholder: pins the client-go dependency set in go.mod until the backend lands.
import (
	_ "k8s.io/api/batch/v1"
	_ "k8s.io/client-go/informers"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/cache"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "k8s.io/client-go/tools/watch"
	_ "sigs.k8s.io/yaml"
)
