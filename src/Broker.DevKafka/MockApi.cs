using System.Runtime.InteropServices;

namespace Broker.DevKafka;

/// <summary>
/// Raw function pointers into librdkafka (rdkafka.h / rdkafka_mock.h). The mock API is marked
/// experimental upstream; signatures here match librdkafka 2.16. Return values typed
/// <c>int</c> are <c>rd_kafka_resp_err_t</c> (0 = no error) unless noted.
/// </summary>
internal static unsafe class MockApi
{
    /// <summary>rd_kafka_type_t RD_KAFKA_PRODUCER.</summary>
    public const int RdKafkaProducer = 0;

    /// <summary>rd_kafka_resp_err_t RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.</summary>
    public const int ErrTopicAlreadyExists = 36;

    // rd_kafka_conf_t *rd_kafka_conf_new(void)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr> ConfNew =
        (delegate* unmanaged[Cdecl]<IntPtr>)NativeLibrdkafka.Export("rd_kafka_conf_new");

    // rd_kafka_conf_res_t rd_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr, size_t errstr_size)
    // Returns RD_KAFKA_CONF_OK (0) on success.
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, byte*, byte*, nuint, int> ConfSet =
        (delegate* unmanaged[Cdecl]<IntPtr, byte*, byte*, byte*, nuint, int>)NativeLibrdkafka.Export("rd_kafka_conf_set");

    // void rd_kafka_conf_destroy(rd_kafka_conf_t *conf)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, void> ConfDestroy =
        (delegate* unmanaged[Cdecl]<IntPtr, void>)NativeLibrdkafka.Export("rd_kafka_conf_destroy");

    // rd_kafka_t *rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
    // Takes ownership of conf on success only.
    public static readonly delegate* unmanaged[Cdecl]<int, IntPtr, byte*, nuint, IntPtr> New =
        (delegate* unmanaged[Cdecl]<int, IntPtr, byte*, nuint, IntPtr>)NativeLibrdkafka.Export("rd_kafka_new");

    // void rd_kafka_destroy(rd_kafka_t *rk)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, void> Destroy =
        (delegate* unmanaged[Cdecl]<IntPtr, void>)NativeLibrdkafka.Export("rd_kafka_destroy");

    // rd_kafka_mock_cluster_t *rd_kafka_mock_cluster_new(rd_kafka_t *rk, int broker_cnt)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr> ClusterNew =
        (delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr>)NativeLibrdkafka.Export("rd_kafka_mock_cluster_new");

    // void rd_kafka_mock_cluster_destroy(rd_kafka_mock_cluster_t *mcluster)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, void> ClusterDestroy =
        (delegate* unmanaged[Cdecl]<IntPtr, void>)NativeLibrdkafka.Export("rd_kafka_mock_cluster_destroy");

    // const char *rd_kafka_mock_cluster_bootstraps(const rd_kafka_mock_cluster_t *mcluster)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*> ClusterBootstraps =
        (delegate* unmanaged[Cdecl]<IntPtr, byte*>)NativeLibrdkafka.Export("rd_kafka_mock_cluster_bootstraps");

    // rd_kafka_resp_err_t rd_kafka_mock_topic_create(mcluster, const char *topic, int partition_cnt, int replication_factor)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, int, int> TopicCreate =
        (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, int, int>)NativeLibrdkafka.Export("rd_kafka_mock_topic_create");

    // rd_kafka_resp_err_t rd_kafka_mock_broker_set_down(mcluster, int32_t broker_id)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, int, int> BrokerSetDown =
        (delegate* unmanaged[Cdecl]<IntPtr, int, int>)NativeLibrdkafka.Export("rd_kafka_mock_broker_set_down");

    // rd_kafka_resp_err_t rd_kafka_mock_broker_set_up(mcluster, int32_t broker_id)
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, int, int> BrokerSetUp =
        (delegate* unmanaged[Cdecl]<IntPtr, int, int>)NativeLibrdkafka.Export("rd_kafka_mock_broker_set_up");

    // void rd_kafka_mock_broker_set_host_port(mcluster, int32_t broker_id, const char *host, int port)
    // Changes only the address advertised in Metadata responses, not the listener.
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, int, byte*, int, void> BrokerSetHostPort =
        (delegate* unmanaged[Cdecl]<IntPtr, int, byte*, int, void>)NativeLibrdkafka.Export("rd_kafka_mock_broker_set_host_port");

    // rd_kafka_resp_err_t rd_kafka_mock_partition_delete_records(mcluster, const char *topic, int32_t partition, int64_t before_offset)
    // Recent addition to the mock API: null when the loaded build lacks it.
    public static readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, int, long, int> PartitionDeleteRecords =
        (delegate* unmanaged[Cdecl]<IntPtr, byte*, int, long, int>)NativeLibrdkafka.OptionalExport("rd_kafka_mock_partition_delete_records");

    /// <summary>Runs <paramref name="call"/> with a NUL-terminated UTF-8 copy of <paramref name="s"/>.</summary>
    public static T WithUtf8<T>(string s, Func<IntPtr, T> call)
    {
        var p = Marshal.StringToCoTaskMemUTF8(s);
        try { return call(p); }
        finally { Marshal.FreeCoTaskMem(p); }
    }
}
